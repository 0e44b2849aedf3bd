"""Expiry in the database: which batches are in which warning tier at which site, blocking
expired batches at midnight site time, and FEFO pick suggestions for an order line."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.readings import Site, Zone
from cloud.adapters.orm.traceability import Batch, CustodyInterval, Item, Order, OrderLine, Product
from cloud.domain import expiry as rules
from cloud.domain.clock import utcnow
from cloud.domain.fefo import Candidate, Suggestion, suggest
from cloud.service_layer import rules as rules_service
from cloud.service_layer.alerts import raise_alert
from cloud.service_layer.audit import audit_reason

log = logging.getLogger(__name__)
TIER_SEVERITY = ((7, "critical"), (30, "warning"))  # tighter tiers are more urgent


@dataclass(frozen=True, slots=True)
class ExpiringBatch:
    batch_id: int
    lot: str
    gtin: str
    expires_on: date
    site_id: str | None  # None: the batch's stock is not known to be at any site
    tier: int | None  # days; None once expired
    days_left: int
    items: int
    expired: bool


def batch_sites(session: Session, batch_ids: list[int]) -> dict[int, dict[str, int]]:
    """Where each batch's items are now: batch id -> site id -> items there."""
    query = (
        select(Item.batch_id, Zone.site_id, func.count())
        .join(CustodyInterval, CustodyInterval.item_id == Item.id)
        .join(Zone, Zone.id == CustodyInterval.zone_id)
        .where(CustodyInterval.ended_at.is_(None), Item.batch_id.in_(batch_ids))
        .group_by(Item.batch_id, Zone.site_id)
    )
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for batch_id, site_id, count in session.execute(query):
        found[batch_id][site_id] = count
    return found


def _site_zones(session: Session) -> dict[str, str]:
    return {s.id: s.timezone for s in session.scalars(select(Site))}


def product_tiers(product: Product) -> tuple[int, ...]:
    return rules.parse_tiers(product.expiry_warning_days, f"product {product.gtin}")


def expiry_tiers(session: Session, now: datetime) -> list[ExpiringBatch]:
    """Batches in a warning tier or expired, per site where their stock is (site time)."""
    zones = _site_zones(session)
    products = {p.gtin: p for p in session.scalars(select(Product))}
    batches = list(
        session.scalars(
            select(Batch)
            .where(Batch.status.in_(("available", "held", "expired")))
            .order_by(Batch.id)
        )
    )
    where = batch_sites(session, [b.id for b in batches])
    rows = []
    for batch in batches:
        tiers = product_tiers(products[batch.gtin])
        sites: dict[str | None, int] = dict(where.get(batch.id, {}).items()) or {None: 0}
        for site_id, count in sorted(sites.items(), key=lambda kv: kv[0] or ""):
            today = rules.site_today(now, zones.get(site_id) if site_id else None)
            expired = rules.is_expired(batch.expires_on, today)
            tier = rules.tier(batch.expires_on, today, tiers)
            if tier is None and not expired:
                continue
            rows.append(
                ExpiringBatch(
                    batch_id=batch.id,
                    lot=batch.lot,
                    gtin=batch.gtin,
                    expires_on=batch.expires_on,
                    site_id=site_id,
                    tier=tier,
                    days_left=rules.days_left(batch.expires_on, today),
                    items=count,
                    expired=expired,
                )
            )
    return sorted(rows, key=lambda r: (r.expires_on, r.lot, r.site_id or ""))


def warn_expiring(session: Session, now: datetime) -> list[Alert]:
    """One alert per batch and tier it enters (the first site to reach the tier counts)."""
    raised = []
    for row in expiry_tiers(session, now):
        if row.tier is None:
            continue
        severity = next((s for limit, s in TIER_SEVERITY if row.tier <= limit), "info")
        alert = raise_alert(
            session,
            kind=f"expiry_{row.tier}",
            severity=severity,
            title=f"Batch {row.lot} expires on {row.expires_on.isoformat()} "
            f"({row.days_left} days left)",
            subject_kind="expiry",
            subject_id=str(row.batch_id),
            site_id=row.site_id,
            now=now,
        )
        if alert is not None:
            raised.append(alert)
    return raised


def block_expired(session: Session, now: datetime) -> list[Batch]:
    """Set expired every available batch past midnight after its expiry date at any site
    where its stock is (UTC for stock not known to be anywhere), and raise an alert."""
    expired_ids = {r.batch_id for r in expiry_tiers(session, now) if r.expired}
    if not expired_ids:
        return []
    query = select(Batch).where(Batch.id.in_(expired_ids), Batch.status == "available")
    blocked = list(session.scalars(query.order_by(Batch.id)))
    session.info.setdefault("actor", "scheduler")
    with audit_reason(session, "expired: blocked at midnight site time"):
        for batch in blocked:
            batch.status = "expired"
            log.info("batch %s (%s) expired on %s: blocked", batch.id, batch.lot, batch.expires_on)
        session.flush()
    for batch in blocked:
        raise_alert(
            session,
            kind="expired",
            severity="warning",
            title=f"Batch {batch.lot} expired on {batch.expires_on.isoformat()}: blocked",
            subject_kind="expiry",
            subject_id=str(batch.id),
            now=now,
        )
    return blocked


# --- FEFO ---------------------------------------------------------------------------------


def remaining_budget(session: Session, batch_id: int) -> float | None:
    """Minutes of stability budget the batch has left (None: its product has none); the one
    place FEFO asks the rules service for it."""
    return rules_service.remaining_budget(session, batch_id)


def _stock(session: Session, batch_ids: list[int]) -> dict[int, int]:
    """Items of each batch now in a warehouse zone (not on a truck or at a customer)."""
    query = (
        select(Item.batch_id, func.count())
        .join(CustodyInterval, CustodyInterval.item_id == Item.id)
        .join(Zone, Zone.id == CustodyInterval.zone_id)
        .join(Site, Site.id == Zone.site_id)
        .where(
            CustodyInterval.ended_at.is_(None),
            Item.batch_id.in_(batch_ids),
            Site.kind == "warehouse",
        )
        .group_by(Item.batch_id)
    )
    return {batch_id: count for batch_id, count in session.execute(query)}


def fefo_suggestions(
    session: Session, order_line_id: int, now: datetime | None = None
) -> Suggestion:
    """Which batches to pick the order line from, first expired first out."""
    now = now or utcnow()
    line = session.get(OrderLine, order_line_id)
    if line is None:
        raise LookupError(f"order line {order_line_id} does not exist")
    order = session.get(Order, line.order_id)
    batches = list(session.scalars(select(Batch).where(Batch.gtin == line.gtin)))
    stock = _stock(session, [b.id for b in batches])
    serialised = set(
        session.scalars(select(Item.batch_id).where(Item.batch_id.in_([b.id for b in batches])))
    )
    candidates = [
        Candidate(
            batch_id=b.id,
            lot=b.lot,
            expires_on=b.expires_on,
            status=b.status,
            # A batch without serialised items is counted by its recorded quantity.
            quantity=stock.get(b.id, 0) if b.id in serialised else b.quantity,
            remaining_budget_min=remaining_budget(session, b.id),
        )
        for b in batches
    ]
    today = rules.site_today(now, None)
    delivery = order.deliver_by if order is not None else None
    return suggest(
        candidates,
        line.quantity,
        today,
        min_shelf_life_days=line.min_shelf_life_days,
        delivery=delivery,
    )
