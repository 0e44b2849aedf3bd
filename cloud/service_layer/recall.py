"""Recalls: QA opens one for a batch with a signature; every item is traced to where it is
now (a zone of ours, a truck, or a customer), the stock still ours is frozen, and the
batch's exposures are gathered for the regulator's report."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.alerting import Recall, RecallItem
from cloud.adapters.orm.people import Signature, User
from cloud.adapters.orm.quality import Excursion, Exposure
from cloud.adapters.orm.readings import Site, Zone
from cloud.adapters.orm.traceability import (
    Batch,
    CustodyInterval,
    Customer,
    Item,
    Order,
    Shipment,
    ShipmentItem,
)
from cloud.domain.clock import utcnow
from cloud.service_layer.alerts import raise_alert
from cloud.service_layer.audit import audit_reason
from cloud.service_layer.signatures import sign, signatures_on

log = logging.getLogger(__name__)


class RecallRefused(ValueError):
    """A recall that cannot be opened: unknown batch, or one already open."""


@dataclass(frozen=True, slots=True)
class Whereabouts:
    disposition: str  # frozen (our stock) | in_transit | at_customer | unknown
    zone_id: str | None
    site_id: str | None
    customer_id: str | None
    shipment_id: str | None
    since: datetime | None


def whereabouts(session: Session, item: Item) -> Whereabouts:
    """Where the item is now, from its open custody interval and its shipments."""
    interval = session.scalars(
        select(CustodyInterval).where(
            CustodyInterval.item_id == item.id, CustodyInterval.ended_at.is_(None)
        )
    ).first()
    shipped = session.execute(
        select(Shipment, ShipmentItem)
        .join(ShipmentItem, ShipmentItem.shipment_id == Shipment.id)
        .where(ShipmentItem.item_id == item.id)
        .order_by(Shipment.created_at.desc())
    ).first()
    shipment, line = shipped if shipped else (None, None)
    customer_id = None
    if shipment is not None:
        order = session.get(Order, shipment.order_id)
        customer_id = order.customer_id if order else None
    zone = session.get(Zone, interval.zone_id) if interval else None
    site = session.get(Site, zone.site_id) if zone else None
    since = interval.started_at if interval else None
    if shipment is not None and (
        shipment.state == "delivered" or (site and site.kind == "customer")
    ):
        at = line.delivered_at if line and line.delivered_at else since
        return Whereabouts(
            "at_customer",
            zone.id if zone else None,
            site.id if site else None,
            customer_id,
            shipment.id,
            at,
        )
    if site is not None and site.kind == "customer":
        owner = session.scalars(select(Customer.id).where(Customer.site_id == site.id)).first()
        return Whereabouts("at_customer", zone.id if zone else None, site.id, owner, None, since)
    if site is not None and site.kind == "truck":
        return Whereabouts(
            "in_transit",
            zone.id if zone else None,
            site.id,
            customer_id,
            shipment.id if shipment else None,
            since,
        )
    if zone is None:
        return Whereabouts(
            "unknown", None, None, customer_id, shipment.id if shipment else None, None
        )
    return Whereabouts("frozen", zone.id, zone.site_id, None, None, since)


def open_recall(
    session: Session,
    batch_id: int,
    user: User,
    password: str,
    reason: str,
    now: datetime | None = None,
    *,
    username: str | None = None,
) -> Recall:
    """Open a signed recall of the batch: trace its items, freeze it, raise an alert
    (`username`: the signature's user ID, see signatures.sign)."""
    now = now or utcnow()
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise RecallRefused(f"batch {batch_id} does not exist")
    already = session.scalars(
        select(Recall.id).where(Recall.batch_id == batch_id, Recall.state == "open")
    ).first()
    if already is not None:
        raise RecallRefused(f"batch {batch.lot} has an open recall already ({already})")
    if not reason.strip():
        raise RecallRefused("a recall needs a reason")
    recall = Recall(
        batch_id=batch_id,
        reason=reason,
        state="open",
        opened_at=now,
        opened_by=user.id,
        previous_status=batch.status,
    )
    session.add(recall)
    session.flush()
    sign(session, user, password, recall, "approval", reason, username=username)
    items = session.scalars(select(Item).where(Item.batch_id == batch_id).order_by(Item.id))
    for item in items:
        where = whereabouts(session, item)
        session.add(
            RecallItem(
                recall_id=recall.id,
                item_id=item.id,
                disposition=where.disposition,
                zone_id=where.zone_id,
                site_id=where.site_id,
                customer_id=where.customer_id,
                shipment_id=where.shipment_id,
                since=where.since,
            )
        )
    with audit_reason(session, f"recall {recall.id}: {reason}"):
        batch.status = "recalled"  # blocks picking, transfers and shipments of all its stock
        session.flush()
    raise_alert(
        session,
        kind="recall",
        severity="critical",
        title=f"Recall {recall.id} of batch {batch.lot}: {reason}",
        subject_kind="recall",
        subject_id=str(recall.id),
        now=now,
    )
    log.info("recall %s opened for batch %s by %s", recall.id, batch.lot, user.username)
    return recall


@dataclass(frozen=True, slots=True)
class TracedItem:
    item: Item
    record: RecallItem
    custody: list[CustodyInterval]


@dataclass(frozen=True, slots=True)
class RecallTrace:
    recall: Recall
    batch: Batch
    signatures: list[Signature]
    items: list[TracedItem]
    exposures: list[tuple[Exposure, Excursion]]


def trace(session: Session, recall_id: int) -> RecallTrace:
    """The recall with every item's place when it opened, its custody history, and the
    batch's exposures (exposure is recorded per batch: every item of it shares them)."""
    recall = session.get(Recall, recall_id)
    if recall is None:
        raise LookupError(f"recall {recall_id} does not exist")
    batch = session.get(Batch, recall.batch_id)
    assert batch is not None  # a foreign key
    rows = session.execute(
        select(RecallItem, Item)
        .join(Item, Item.id == RecallItem.item_id)
        .where(RecallItem.recall_id == recall_id)
        .order_by(Item.serial)
    )
    items = []
    for record, item in rows:
        custody = list(
            session.scalars(
                select(CustodyInterval)
                .where(CustodyInterval.item_id == item.id)
                .order_by(CustodyInterval.started_at, CustodyInterval.id)
            )
        )
        items.append(TracedItem(item, record, custody))
    exposures = [
        (exposure, excursion)
        for exposure, excursion in session.execute(
            select(Exposure, Excursion)
            .join(Excursion, Excursion.id == Exposure.excursion_id)
            .where(Exposure.batch_id == batch.id)
            .order_by(Exposure.started_at, Exposure.id)
        )
    ]
    return RecallTrace(recall, batch, signatures_on(session, recall), items, exposures)
