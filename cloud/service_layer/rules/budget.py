"""The stability budget a batch has left, and the mean kinetic temperature (MKT) of a zone or
of a batch's custody: the questions QA, FEFO and the API ask of the stored exposures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import Excursion, Exposure
from cloud.adapters.orm.readings import Reading
from cloud.adapters.orm.traceability import Batch, CustodyInterval, Item, Product
from cloud.domain.clock import utcnow
from cloud.domain.exposure import remaining_budget as budget_left
from cloud.domain.exposure import spent_minutes
from cloud.domain.mkt import durations, mkt, window_for
from cloud.service_layer.rules.history import _sensors_of
from cloud.service_layer.rules.outcome import WITHDRAWN


def _spent(
    session: Session,
    batch_ids: set[int],
    rewritten: set[int] | None = None,
    fresh: Sequence[tuple[int, str, datetime, datetime]] = (),
) -> dict[int, float]:
    """Minutes out of range each batch has spent, over all its exposures."""
    query, values = _spent_query(), {"batches": list(batch_ids), "rewritten": list(rewritten or ())}
    spans: dict[int, list[tuple[str, datetime, datetime]]] = defaultdict(list)
    for batch_id, kind, a, b in [*session.execute(query, values), *fresh]:
        spans[batch_id].append((kind, a, b))
    return {batch_id: spent_minutes(s) for batch_id, s in spans.items()}


@lru_cache(maxsize=1)
def _spent_query() -> Any:
    """Some batches' exposures but those of some excursions (being rewritten): made once."""
    return (
        select(Exposure.batch_id, Excursion.kind, Exposure.started_at, Exposure.ended_at)
        .join(Excursion, Excursion.id == Exposure.excursion_id)
        .where(Exposure.batch_id.in_(bindparam("batches", expanding=True)))
        .where(Exposure.excursion_id.not_in(bindparam("rewritten", expanding=True)))
        .where(or_(Excursion.suppressed_reason.is_(None), Excursion.suppressed_reason != WITHDRAWN))
    )


def remaining_budget(session: Session, batch_id: int) -> float | None:
    """Minutes of the product's stability budget the batch has left (None: no budget set)."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise LookupError(f"batch {batch_id} does not exist")
    product = session.get(Product, batch.gtin)
    return _budget_left(product, _spent(session, {batch_id}).get(batch_id, 0.0))


def _budget_left(product: Product | None, spent_min: float) -> float | None:
    """Minutes of the product's stability budget left after `spent_min` (None: no budget set).

    The one place a product and the minutes spent make the budget left: `remaining_budget`
    asks it of stored exposures, automatic holds of those being written (not yet flushed)."""
    budget = None if product is None else product.stability_budget_min
    return budget_left(budget, spent_min)


def mkt_for_zone(session: Session, zone_id: str, start: datetime, end: datetime) -> float | None:
    """MKT of a zone's temperature over [start, end) (None: no valid readings)."""
    points = _zone_points(session, zone_id, start, end)
    return mkt(points) if points else None


def _zone_points(session: Session, zone_id: str, start: datetime, end: datetime) -> list:
    sensors = _sensors_of(session, zone_id)
    rows = session.execute(
        select(Reading.taken_at, func.avg(Reading.value))
        .where(
            Reading.sensor_id.in_(sensors),
            Reading.quantity == "temperature",
            Reading.quality == "ok",
            Reading.value.is_not(None),
            Reading.taken_at >= start - timedelta(hours=1),
            Reading.taken_at < end,
        )
        .group_by(Reading.taken_at)
        .order_by(Reading.taken_at)
    ).all()
    return durations([(t, float(v)) for t, v in rows], start, end)


def mkt_for_batch(session: Session, batch_id: int, now: datetime | None = None) -> float | None:
    """MKT over the batch's custody in the window of its product class (24 h or 30 days)."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise LookupError(f"batch {batch_id} does not exist")
    product = session.get(Product, batch.gtin)
    end = now or utcnow()
    start = end - window_for(None if product is None else product.high)
    spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for zone_id, a, b in session.execute(
        select(CustodyInterval.zone_id, CustodyInterval.started_at, CustodyInterval.ended_at)
        .join(Item, Item.id == CustodyInterval.item_id)
        .where(Item.batch_id == batch_id, CustodyInterval.started_at < end)
        .where(or_(CustodyInterval.ended_at.is_(None), CustodyInterval.ended_at > start))
    ):
        spans[zone_id].append((max(a, start), min(b or end, end)))
    points = []
    for zone_id, zone_spans in spans.items():
        for a, b in _merged(zone_spans):
            points += _zone_points(session, zone_id, a, b)
    return mkt(points) if points else None


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        elif b > a:
            merged.append((a, b))
    return merged
