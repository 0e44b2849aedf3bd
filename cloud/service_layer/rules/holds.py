"""Automatic holds: a batch an excursion exposed is held when its product's rules say so,
with one undecided hold a batch that further reasons join."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import Excursion, Hold
from cloud.adapters.orm.traceability import Batch, Product
from cloud.domain import holds as hold_rules
from cloud.domain.clock import utcnow
from cloud.service_layer.rules.budget import _budget_left, _spent
from cloud.service_layer.rules.outcome import RulesOutcome

log = logging.getLogger(__package__)  # the package's name: log lines read as they always did


def _hold(session: Session, found: list[tuple[Excursion, Any]], result: RulesOutcome) -> None:
    """Hold each exposed batch a product rule says must be held; one undecided hold a batch."""
    batch_ids = {x.batch_id for _, x in found}
    batches: dict[int, Batch] = {}
    products: dict[str, Product] = {}
    undecided: dict[int, Hold] = {}
    batch: Batch | None
    product: Product | None  # outer joins: a batch may have neither
    hold: Hold | None
    for batch, product, hold in session.execute(  # batches, products, undecided holds: one query
        select(Batch, Product, Hold)
        .outerjoin(Product, Product.gtin == Batch.gtin)
        .outerjoin(Hold, (Hold.batch_id == Batch.id) & Hold.status.in_(hold_rules.UNDECIDED))
        .where(Batch.id.in_(batch_ids))
        .order_by(Hold.id)
    ):
        batches[batch.id] = batch
        if product is not None:
            products[product.gtin] = product
        if hold is not None:
            undecided.setdefault(batch.id, hold)
    # Stored exposures, except those being rewritten now, plus the ones just computed.
    spent = _spent(
        session,
        batch_ids,
        {row.id for row, _ in found if row.id is not None},
        [(x.batch_id, row.kind, x.started_at, x.ended_at) for row, x in found],
    )
    for row, batch_id in ((row, x.batch_id) for row, x in found):
        batch = batches.get(batch_id)
        if batch is None or batch.status in hold_rules.NOT_HELD:
            continue
        product = products.get(batch.gtin)
        budget = None if product is None else product.stability_budget_min
        reasons = hold_rules.hold_reasons(
            hold_rules.ExcursionFacts(
                kind=row.kind,
                level=row.level,
                rule=row.rule,
                suppressed=row.suppressed_reason is not None,
            ),
            hold_rules.ProductFacts(
                freeze_sensitive=bool(product and product.freeze_sensitive), budget_min=budget
            ),
            _budget_left(product, spent.get(batch_id, 0.0)),
        )
        if not reasons:
            continue
        hold = undecided.get(batch_id)
        if hold is not None:
            if row.evidence_note and (
                hold.evidence_note is None or (row.id is not None and hold.excursion_id == row.id)
            ):  # evidence from overdue sensors: said on the hold as on the excursion
                hold.evidence_note = row.evidence_note
            new = [r for r in reasons if r not in hold.reason]
            if new:  # one decision per batch: further reasons join the hold QA has open
                hold.reason = f"{hold.reason}; {'; '.join(new)}"
            continue
        hold = Hold(
            batch_id=batch_id,
            reason="; ".join(reasons),
            excursion=row,  # its id once the flush has inserted the excursion
            opened_at=utcnow(),
            status="open",
            evidence_note=row.evidence_note,
        )
        session.add(hold)
        undecided[batch_id] = hold
        if batch.status == "available":
            batch.status = "held"
        result.holds.append(hold)
        result.lots[batch_id] = batch.lot
        log.info("batch %s held: %s (%s in %s)", batch_id, hold.reason, row.rule, row.zone_id)
