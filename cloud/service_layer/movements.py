"""Transfers and shipments in the database, moved through the domain lifecycle.

Each step loads the stored record into its immutable domain object, takes the step there
(which refuses illegal transitions), writes back the new state, the state change with its
actor, and the per-item records, then rebuilds the custody of the items it moved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import Site, Zone
from cloud.adapters.orm.traceability import (
    SHIPMENT_STATES,
    TRANSFER_STATES,
    Customer,
    Item,
    Order,
    Shipment,
    ShipmentItem,
    ShipmentStateChange,
    Transfer,
    TransferItem,
    TransferStateChange,
)
from cloud.domain import lifecycle
from cloud.domain.custody import Place, item_key
from cloud.service_layer.custody import rebuild_custody
from cloud.service_layer.release_gate import (
    LoadRefused,
    gate_reasons,
    refuse_load,
    shipment_destination,
)
from cloud.service_layer.shipping_release import release_reasons


class UnknownRecord(LookupError):
    """A referenced site, zone, order or record that does not exist."""


@dataclass(frozen=True)
class Kind:
    """One kind of moving record: its table, its item lines, its state changes, and the
    column that names the record in both."""

    name: str
    model: type[Any]
    line: type[Any]
    change: type[Any]
    key: str
    states: tuple[str, ...]


TRANSFER = Kind(
    "transfer", Transfer, TransferItem, TransferStateChange, "transfer_id", TRANSFER_STATES
)
SHIPMENT = Kind(
    "shipment", Shipment, ShipmentItem, ShipmentStateChange, "shipment_id", SHIPMENT_STATES
)


def lines(db: Session, kind: Kind, ident: str) -> list[tuple[Any, Item]]:
    """The record's item lines with their items, by item."""
    query = (
        select(kind.line, Item)
        .join(Item, Item.id == kind.line.item_id)
        .where(getattr(kind.line, kind.key) == ident)
        .order_by(Item.id)
    )
    return [(line, item) for line, item in db.execute(query)]


def history(db: Session, kind: Kind, ident: str) -> list[Any]:
    """The record's state changes, oldest first."""
    change = kind.change
    query = select(change).where(getattr(change, kind.key) == ident)
    return list(db.scalars(query.order_by(change.at, change.id)))


def _history(db: Session, kind: Kind, ident: str) -> tuple[lifecycle.StateChange, ...]:
    return tuple(lifecycle.StateChange(r.state, r.at) for r in history(db, kind, ident))


def _unused(db: Session, kind: Kind, ident: str) -> None:
    if db.get(kind.model, ident) is not None:
        raise ValueError(f"{kind.name} {ident} exists already")


def _opened(db: Session, kind: Kind, row: Any, items: list[Item], at: datetime) -> Any:
    """Store a new record with its item lines and its first state."""
    db.add(row)
    db.flush()
    db.add_all(kind.line(**{kind.key: row.id}, item_id=i.id) for i in items)
    db.add(kind.change(**{kind.key: row.id}, state=row.state, at=at, actor=db.info.get("actor")))
    db.flush()
    return row


def _stepped(db: Session, kind: Kind, row: Any, state: str, at: datetime, moved: list[int]) -> Any:
    """Store the record's new state and rebuild the custody of the items the step moved."""
    row.state = state
    db.add(kind.change(**{kind.key: row.id}, state=state, at=at, actor=db.info.get("actor")))
    db.flush()
    rebuild_custody(db, moved)
    return row


def take_step(
    db: Session,
    row: Transfer | Shipment,
    step: str,
    at: datetime,
    items: list[Item] | None = None,
    zone_id: str | None = None,
) -> Transfer | Shipment:
    """Take a lifecycle step on a transfer or a shipment and store what it changed."""
    if isinstance(row, Transfer):
        return step_transfer(db, row, step, at, items, zone_id)
    if items:
        raise ValueError("a shipment moves every item it picked: name none")
    return step_shipment(db, row, step, at, zone_id)


def place(db: Session, zone_id: str) -> Place:
    zone = db.get(Zone, zone_id)
    if zone is None:
        raise UnknownRecord(f"zone {zone_id} does not exist")
    site = db.get(Site, zone.site_id)
    truck = zone.kind == "truck_compartment" or (site is not None and site.kind == "truck")
    return Place(zone.id, zone.site_id, truck)


def release_gate(
    db: Session,
    items: Iterable[Item],
    at: datetime,
    step: str,
    *,
    destination: str | None,
    order_id: str | None = None,
) -> None:
    """Refuse to plan or pick items the gate would refuse to load, with every reason that
    applies (release_gate: expired, held, rejected, recalled, short-dated for the order,
    destination not approved). The zone they leave is judged when they are loaded:
    an excursion open now may have ended by then."""
    items = list(items)
    reasons = gate_reasons(
        db, {i.batch_id for i in items}, None, destination, at=at, order_id=order_id
    )
    if reasons:
        raise LoadRefused(reasons, step)


def _fixed(at: datetime) -> lifecycle.Clock:
    return lambda: at


# --- transfers ----------------------------------------------------------------------------


def plan_transfer(
    db: Session, ident: str, origin: str, destination: str, items: list[Item], at: datetime
) -> Transfer:
    for site in (origin, destination):
        if db.get(Site, site) is None:
            raise UnknownRecord(f"site {site} does not exist")
    _unused(db, TRANSFER, ident)
    release_gate(db, items, at, "transfer plan", destination=destination)
    planned = lifecycle.Transfer.plan(
        ident, origin, destination, [item_key(i.gtin, i.serial) for i in items], _fixed(at)
    )
    row = Transfer(
        id=ident, origin_site_id=origin, destination_site_id=destination, state=planned.state
    )
    return _opened(db, TRANSFER, row, items, at)


def _domain_transfer(db: Session, row: Transfer) -> lifecycle.Transfer:
    found = lines(db, TRANSFER, row.id)
    key = {item.id: item_key(item.gtin, item.serial) for _, item in found}
    return lifecycle.Transfer(
        id=row.id,
        origin=row.origin_site_id,
        destination=row.destination_site_id,
        planned=frozenset(key[ln.item_id] for ln, _ in found if ln.discrepancy != "unexpected"),
        state=row.state,
        truck=place(db, row.truck_zone_id) if row.truck_zone_id else None,
        loaded=frozenset(key[ln.item_id] for ln, _ in found if ln.loaded_at is not None),
        received=frozenset(key[ln.item_id] for ln, _ in found if ln.received_at is not None),
        history=_history(db, TRANSFER, row.id),
    )


def step_transfer(
    db: Session,
    row: Transfer,
    step: str,
    at: datetime,
    items: list[Item] | None = None,
    zone_id: str | None = None,
) -> Transfer:
    """Take `step` (load, depart, receive) and store what it changed."""
    before = _domain_transfer(db, row)
    keys = {item_key(i.gtin, i.serial): i for i in items or []}
    clock = _fixed(at)
    if step == "load":
        refuse_load(
            db,
            keys.values(),
            at,
            destination=row.destination_site_id,
            also=release_reasons(db, row, keys.values()),
        )
        after = before.load(keys, place(db, _required(zone_id, "truck_zone_id")), clock)
    elif step == "depart":
        after = before.depart(clock)
    else:
        after = before.receive(keys, place(db, _required(zone_id, "zone_id")), clock)
    stored = {item_key(item.gtin, item.serial): line for line, item in lines(db, TRANSFER, row.id)}
    if step == "load":
        row.truck_zone_id = after.truck.zone if after.truck else None
        for key in keys:
            stored[key].loaded_at = at
    elif step == "receive":
        row.receiving_zone_id = zone_id
        for key, item in keys.items():
            line = stored.get(key)
            if line is None:
                db.add(TransferItem(transfer_id=row.id, item_id=item.id, received_at=at))
            else:
                line.received_at = at
        for found in after.discrepancies:
            if found.item in stored:
                stored[found.item].discrepancy = found.kind.value
            else:
                db.flush()
                extra = db.get(TransferItem, (row.id, keys[found.item].id))
                assert extra is not None
                extra.discrepancy = found.kind.value
    return _stepped(db, TRANSFER, row, after.state, at, [i.id for i in keys.values()])


def _required(value: str | None, field: str) -> str:
    if not value:
        raise ValueError(f"{field} is required for this step")
    return value


# --- shipments ----------------------------------------------------------------------------


def pick_shipment(
    db: Session, ident: str, order_id: str, items: list[Item], at: datetime
) -> Shipment:
    order = db.get(Order, order_id)
    if order is None:
        raise UnknownRecord(f"order {order_id} does not exist")
    _unused(db, SHIPMENT, ident)
    destination = shipment_destination(db, order_id)
    release_gate(db, items, at, "pick", destination=destination, order_id=order_id)
    picked = lifecycle.Shipment.pick(
        ident, order_id, order.customer_id, [item_key(i.gtin, i.serial) for i in items], _fixed(at)
    )
    row = Shipment(id=ident, order_id=order_id, state=picked.state)
    return _opened(db, SHIPMENT, row, items, at)


def step_shipment(
    db: Session, row: Shipment, step: str, at: datetime, zone_id: str | None = None
) -> Shipment:
    """Take `step` (load, ship, deliver) and store what it changed."""
    picked = lines(db, SHIPMENT, row.id)
    order = db.get(Order, row.order_id)
    customer = db.get(Customer, order.customer_id) if order else None
    before = lifecycle.Shipment(
        id=row.id,
        order=row.order_id,
        customer=customer.id if customer else "",
        items=frozenset(item_key(i.gtin, i.serial) for _, i in picked),
        state=row.state,
        truck=place(db, row.truck_zone_id) if row.truck_zone_id else None,
        history=_history(db, SHIPMENT, row.id),
    )
    clock = _fixed(at)
    if step == "load":
        destination = shipment_destination(db, row.order_id)
        loading = [i for _, i in picked]
        refuse_load(
            db,
            loading,
            at,
            destination=destination,
            order_id=row.order_id,
            also=release_reasons(db, row, loading),
        )
        after = before.load(place(db, _required(zone_id, "truck_zone_id")), clock)
        row.truck_zone_id = zone_id
    elif step == "ship":
        after = before.ship(clock)
    else:
        after = before.deliver(place(db, _required(zone_id, "zone_id")), clock)
        row.delivery_zone_id = zone_id
    for line, _ in picked:
        if step == "load":
            line.loaded_at = at
        elif step == "deliver":
            line.delivered_at = at
    return _stepped(db, SHIPMENT, row, after.state, at, [i.id for _, i in picked])
