"""The release gate against the database: gathers what cloud.domain.release_gate needs
(batches, recalls, open excursions, the destination's approvals, the order's shelf life)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.alerting import Recall, SiteApproval
from cloud.adapters.orm.quality import Excursion
from cloud.adapters.orm.readings import Site, Zone
from cloud.adapters.orm.traceability import (
    Batch,
    CustodyInterval,
    Customer,
    Item,
    Order,
    OrderLine,
    Product,
)
from cloud.domain import release_gate as gate
from cloud.domain.clock import utcnow
from cloud.domain.expiry import site_today


class LoadRefused(Exception):
    """A load (or the plan or pick before it) the release gate refuses, with every reason
    that applies."""

    def __init__(self, reasons: list[gate.Reason], step: str = "load"):
        super().__init__(f"{step} refused: " + "; ".join(r.detail for r in reasons))
        self.reasons = reasons


def _zones(from_zone: str | Iterable[str] | None) -> tuple[str, ...]:
    if from_zone is None:
        return ()
    return (from_zone,) if isinstance(from_zone, str) else tuple(sorted(set(from_zone)))


def destination_of(session: Session, site_id: str) -> gate.Destination:
    """The site's approved temperature classes (None when it has no approval list)."""
    approved = set(
        session.scalars(
            select(SiteApproval.temperature_class).where(SiteApproval.site_id == site_id)
        )
    )
    return gate.Destination(site_id=site_id, approved=frozenset(approved) if approved else None)


def set_site_approvals(session: Session, site_id: str, classes: Iterable[str]) -> None:
    """Replace the temperature classes the site is approved to receive (audited: a reason)."""
    wanted = set(classes)
    query = select(SiteApproval).where(SiteApproval.site_id == site_id)
    for row in session.scalars(query):
        if row.temperature_class not in wanted:
            session.delete(row)
        wanted.discard(row.temperature_class)
    session.add_all(SiteApproval(site_id=site_id, temperature_class=c) for c in sorted(wanted))


def open_excursions(session: Session, zones: tuple[str, ...]) -> tuple[tuple[str, int, str], ...]:
    if not zones:
        return ()
    query = select(Excursion).where(
        Excursion.zone_id.in_(zones),
        Excursion.state == "open",
        Excursion.suppressed_reason.is_(None),
    )
    return tuple((e.zone_id, e.id, e.kind) for e in session.scalars(query.order_by(Excursion.id)))


def gate_reasons(
    session: Session,
    batch_ids: Iterable[int],
    from_zone: str | Iterable[str] | None,
    destination: str | None,
    *,
    at: datetime | None = None,
    order_id: str | None = None,
) -> list[gate.Reason]:
    """Every reason loading these batches, leaving `from_zone` for the `destination` site,
    must be refused (empty: it may go). An order adds its minimum remaining shelf life."""
    at = at or utcnow()
    zones = _zones(from_zone)
    batches = list(session.scalars(select(Batch).where(Batch.id.in_(set(batch_ids)))))
    products = {
        p.gtin: p
        for p in session.scalars(select(Product).where(Product.gtin.in_({b.gtin for b in batches})))
    }
    recalled = set(
        session.scalars(
            select(Recall.batch_id).where(
                Recall.state == "open", Recall.batch_id.in_([b.id for b in batches])
            )
        )
    )
    site_tz = None
    if zones:
        origin = session.get(Zone, zones[0])
        site = session.get(Site, origin.site_id) if origin else None
        site_tz = site.timezone if site else None
    min_days: dict[int, int] = {}
    delivery = None
    order = session.get(Order, order_id) if order_id else None
    if order is not None:
        delivery = order.deliver_by
        lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))
        need: dict[str, int] = {}
        for line in lines:
            need[line.gtin] = max(need.get(line.gtin, 0), line.min_shelf_life_days)
        min_days = {b.id: need[b.gtin] for b in batches if need.get(b.gtin)}
    load = gate.Load(
        batches=tuple(
            gate.GateBatch(
                id=b.id,
                lot=b.lot,
                status=b.status,
                expires_on=b.expires_on,
                temperature_class=gate.temperature_class(
                    products[b.gtin].low, products[b.gtin].high
                ),
                recalled=b.id in recalled,
            )
            for b in batches
        ),
        today=site_today(at, site_tz),
        delivery=delivery,
        min_shelf_life_days=min_days,
        from_zones=zones,
        open_excursions=open_excursions(session, zones),
        destination=destination_of(session, destination) if destination else None,
    )
    return gate.reasons(load)


def current_zones(session: Session, item_ids: Iterable[int]) -> tuple[str, ...]:
    """The zones the items are in now (what a load takes them out of)."""
    query = select(CustodyInterval.zone_id).where(
        CustodyInterval.item_id.in_(list(item_ids)), CustodyInterval.ended_at.is_(None)
    )
    return tuple(sorted(set(session.scalars(query))))


def shipment_destination(session: Session, order_id: str) -> str | None:
    order = session.get(Order, order_id)
    customer = session.get(Customer, order.customer_id) if order else None
    return customer.site_id if customer else None


def refuse_load(
    session: Session,
    items: Iterable[Item],
    at: datetime,
    *,
    destination: str | None,
    order_id: str | None = None,
    also: Iterable[gate.Reason] = (),
) -> None:
    """Raise LoadRefused with every reason that applies to loading `items` at `at` (and the
    reasons `also` given, such as a missing release for shipment)."""
    items = list(items)
    reasons = gate_reasons(
        session,
        {i.batch_id for i in items},
        current_zones(session, [i.id for i in items]),
        destination,
        at=at,
        order_id=order_id,
    )
    reasons = sorted(set(reasons) | set(also))
    if reasons:
        raise LoadRefused(reasons)
