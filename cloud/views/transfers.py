"""Transfers and shipments for the control room: what is on the road with the truck
compartment's live temperature, release gate results, and discrepancies on receipt; and
the API's lists of them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import LatestReading, Sensor, Site, Zone
from cloud.adapters.orm.traceability import (
    Batch,
    Customer,
    Item,
    Order,
    Shipment,
    ShipmentItem,
    Transfer,
    TransferItem,
)
from cloud.service_layer import release_gate as gate
from cloud.service_layer.movements import Kind
from cloud.views.pages import where_given
from cloud.views.shipping_release import release_of

MOVING = {"transfer": ("loaded", "in_transit"), "shipment": ("loaded", "shipped")}
WAITING = {"transfer": ("planned",), "shipment": ("picked",)}


@dataclass(frozen=True)
class Movement:
    kind: str  # transfer | shipment
    id: str
    state: str
    origin: str
    destination: str
    timezone: str
    truck: str | None
    truck_zone_id: str | None
    temperature: str | None  # "5.1 to 5.3 C"
    temperature_at: datetime | None
    out_of_limits: bool
    items: int
    lots: list[str]
    gate: list[str]  # reasons the load is refused; empty: may load
    discrepancies: list[str]
    created_at: datetime
    release_needed: bool = False  # cold goods waiting to load: QA's release for shipment
    released_by: str | None = None  # the printed name on the valid release, if signed


def _truck_now(session: Session, zone_id: str | None) -> tuple[str | None, datetime | None, bool]:
    if zone_id is None:
        return None, None, False
    zone = session.get(Zone, zone_id)
    rows = session.execute(
        select(LatestReading)
        .join(Sensor, Sensor.id == LatestReading.sensor_id)
        .where(
            Sensor.zone_id == zone_id,
            LatestReading.quantity == "temperature",
            LatestReading.quality.in_(("ok", "calibration_overdue")),
        )
    ).scalars()
    values = [(r.value, r.taken_at) for r in rows if r.value is not None]
    if not values:
        return None, None, False
    low, high = min(v for v, _ in values), max(v for v, _ in values)
    text = f"{low:.1f} C" if round(low, 1) == round(high, 1) else f"{low:.1f} to {high:.1f} C"
    out = zone is not None and (
        (zone.high is not None and high > zone.high) or (zone.low is not None and low < zone.low)
    )
    return text, max(t for _, t in values), out


def _gate(
    session: Session, items: list[Item], origin_zone: str | None, destination: str
) -> list[str]:
    """The release gate's reasons for refusing these items."""
    batch_ids = sorted({i.batch_id for i in items})
    zones = origin_zone or gate.current_zones(session, [i.id for i in items])
    return [r.detail for r in gate.gate_reasons(session, batch_ids, zones, destination)]


def movements(session: Session, include_done: bool = False) -> list[Movement]:
    """Transfers and shipments waiting to load or on the road (and received ones on request)."""
    sites = {s.id: s for s in session.scalars(select(Site))}
    zones = {z.id: z for z in session.scalars(select(Zone))}
    result: list[Movement] = []
    transfer_states = (*WAITING["transfer"], *MOVING["transfer"]) + (
        ("received",) if include_done else ()
    )
    # Received transfers with a discrepancy stay on the board until someone deals with them.
    disputed = select(TransferItem.transfer_id).where(TransferItem.discrepancy.is_not(None))
    for transfer in session.scalars(
        select(Transfer)
        .where(Transfer.state.in_(transfer_states) | Transfer.id.in_(disputed))
        .order_by(Transfer.created_at)
    ):
        lines = session.execute(
            select(TransferItem, Item)
            .join(Item, Item.id == TransferItem.item_id)
            .where(TransferItem.transfer_id == transfer.id)
        ).all()
        items = [i for _, i in lines]
        result.append(
            _movement(
                session,
                "transfer",
                transfer.id,
                transfer.state,
                sites.get(transfer.origin_site_id),
                sites[transfer.destination_site_id].name
                if transfer.destination_site_id in sites
                else transfer.destination_site_id,
                transfer.truck_zone_id,
                zones,
                items,
                [
                    f"{ti.discrepancy}: {i.gtin}/{i.serial}"
                    for ti, i in lines
                    if ti.discrepancy is not None
                ],
                transfer.created_at,
                transfer.destination_site_id,
            )
        )
    shipment_states = (*WAITING["shipment"], *MOVING["shipment"]) + (
        ("delivered",) if include_done else ()
    )
    for shipment, customer in session.execute(
        select(Shipment, Customer)
        .join(Order, Order.id == Shipment.order_id)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Shipment.state.in_(shipment_states))
        .order_by(Shipment.created_at)
    ):
        items = list(
            session.scalars(
                select(Item)
                .join(ShipmentItem, ShipmentItem.item_id == Item.id)
                .where(ShipmentItem.shipment_id == shipment.id)
            )
        )
        origin = None
        if shipment.truck_zone_id and shipment.truck_zone_id in zones:
            origin = sites.get(zones[shipment.truck_zone_id].site_id)
        result.append(
            _movement(
                session,
                "shipment",
                shipment.id,
                shipment.state,
                origin,
                customer.name,
                shipment.truck_zone_id,
                zones,
                items,
                [],
                shipment.created_at,
                customer.site_id or customer.id,
            )
        )
    return [_with_release(session, m) for m in result]


def _with_release(session: Session, m: Movement) -> Movement:
    """The movement with its release for shipment, while it waits to load."""
    if m.state not in WAITING[m.kind] and not (m.kind == "transfer" and m.state == "loaded"):
        return m
    card = release_of(session, m.kind, m.id)
    return replace(m, release_needed=card.required, released_by=card.released_by)


def _movement(
    session: Session,
    kind: str,
    ident: str,
    state: str,
    origin: Site | None,
    destination: str,
    truck_zone_id: str | None,
    zones: dict[str, Zone],
    items: list[Item],
    discrepancies: list[str],
    created_at: datetime,
    destination_id: str,
) -> Movement:
    temperature, taken, out = _truck_now(session, truck_zone_id)
    lots = sorted(
        set(session.scalars(select(Batch.lot).where(Batch.id.in_({i.batch_id for i in items}))))
    )
    by_batch: dict[int, int] = defaultdict(int)
    for item in items:
        by_batch[item.batch_id] += 1
    truck = zones[truck_zone_id].name if truck_zone_id in zones else truck_zone_id
    return Movement(
        kind=kind,
        id=ident,
        state=state,
        origin=origin.name if origin else "--",
        destination=destination,
        timezone=origin.timezone if origin else "UTC",
        truck=truck,
        truck_zone_id=truck_zone_id,
        temperature=temperature,
        temperature_at=taken,
        out_of_limits=out,
        items=len(items),
        lots=lots,
        gate=_gate(session, items, None, destination_id) if state in WAITING[kind] else [],
        discrepancies=discrepancies,
        created_at=created_at,
    )


def records(kind: Kind, state: str | None = None, order_id: str | None = None) -> Select[Any]:
    """Transfers or shipments as the API lists them, newest first; a state the kind does not
    have filters nothing, and order_id applies to shipments."""
    model = kind.model
    query = select(model).order_by(model.created_at.desc(), model.id)
    if state in kind.states:
        query = query.where(model.state == state)
    return where_given(query, model, order_id=order_id)
