"""EPCIS 2.0 export from the database: the stored events behind custody, as a document.

For a batch, an item, or every item, within an optional time range: RFID reads and scans
(ObjectEvent OBSERVE at the read point, in its zone), loading, departure, receiving and
delivery of transfers and shipments (ObjectEvent), packing and unpacking (AggregationEvent
ADD / DELETE), and on request the conditions of each stay in a zone (ObjectEvent
sensor_reporting with min, max and mean temperature per sensor). Event IDs are stable UUIDs
derived from the stored rows, so exporting twice gives the same IDs and a partner's import
stays idempotent.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, tuple_
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import Observation, Reading, ReadPoint, Sensor
from cloud.adapters.orm.traceability import (
    Aggregation,
    CustodyInterval,
    Item,
    LogisticUnit,
    Scan,
    Shipment,
    ShipmentItem,
    ShipmentStateChange,
    Transfer,
    TransferItem,
    TransferStateChange,
)
from cloud.domain.clock import utcnow
from cloud.domain.epcis import (
    CELSIUS,
    TEMPERATURE,
    AggregationEvent,
    ObjectEvent,
    SensorElement,
    SensorReport,
    document,
)
from cloud.domain.epcis.ids import item_uri, read_point_uri, sensor_uri, unit_uri, zone_uri
from cloud.service_layer.custody import links_above

NAMESPACE = uuid.UUID("6f1d3c52-8f0b-4c1e-9a57-2f4c0f7e6a11")
UTC_OFFSET = "+00:00"
OBSERVED_STEPS = {"receiving", "storing", "picking", "loading", "shipping", "unloading"}


@dataclass(frozen=True)
class Selection:
    """Which items (None: all) and which event times (either end open)."""

    item_ids: frozenset[int] | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.item_ids is None and self.start is None and self.end is None:
            raise ValueError("name a batch, an item or a time range to export")
        if self.start and self.end and self.start > self.end:
            raise ValueError("the time range starts after it ends")

    def within(self, column: Any) -> list[Any]:
        bounds = [] if self.start is None else [column >= self.start]
        return bounds if self.end is None else [*bounds, column <= self.end]


def batch_selection(
    session: Session, batch_id: int, start: datetime | None, end: datetime | None
) -> Selection:
    ids = frozenset(session.scalars(select(Item.id).where(Item.batch_id == batch_id)))
    return Selection(ids, start, end)


def export_document(
    session: Session, selection: Selection, *, sensors: bool = False
) -> dict[str, Any]:
    """The EPCISDocument for the selection, events in time order."""
    return document(export_events(session, selection, sensors=sensors), utcnow())


def export_events(
    session: Session, selection: Selection, *, sensors: bool = False
) -> list[ObjectEvent | AggregationEvent]:
    """The selection's events, oldest first."""
    ids = selection.item_ids
    names = _Names(session, active_items(session, selection) if ids is None else ids)
    events: list[ObjectEvent | AggregationEvent] = [
        *_reads(session, selection, names),
        *_scans(session, selection, names),
        *_movements(session, selection, names),
        *_packing(selection, names),
    ]
    if sensors:
        events += _stays(session, selection, names)
    return sorted(events, key=lambda e: (e.event_time, e.event_id or ""))


def _id(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, ':'.join(map(str, parts)))}"


def active_items(session: Session, selection: Selection) -> frozenset[int]:
    """The items with a read, scan, movement, packing or stay in the selection's time range."""
    ids = set(
        session.scalars(
            select(Item.id)
            .join(Observation, Observation.epc == Item.epc)
            .where(*selection.within(Observation.first_seen))
        )
    )
    scanned = select(Item.id).join(Scan, (Scan.gtin == Item.gtin) & (Scan.serial == Item.serial))
    ids |= set(session.scalars(scanned.where(*selection.within(Scan.scanned_at))))
    for line, arrived in (
        (TransferItem, TransferItem.received_at),
        (ShipmentItem, ShipmentItem.delivered_at),
    ):
        for moved in (line.loaded_at, arrived):
            ids |= set(session.scalars(select(line.item_id).where(*selection.within(moved))))
    packed = select(Aggregation.child_item_id).where(*selection.within(Aggregation.packed_at))
    ids |= {i for i in session.scalars(packed) if i is not None}
    custody = select(CustodyInterval.item_id).where(*selection.within(CustodyInterval.started_at))
    ids |= set(session.scalars(custody))
    return frozenset(ids)


class _Names:
    """The selection's items and the units they were packed in, with their EPC URIs."""

    def __init__(self, session: Session, item_ids: frozenset[int]):
        query = select(Item).where(Item.id.in_(item_ids))
        self.items = {i.id: i for i in session.scalars(query)}
        self.uri = {i.id: item_uri(i.gtin, i.serial, i.epc) for i in self.items.values()}
        self.links = links_above(session, list(self.items))
        ssccs = {a.parent_sscc for a in self.links}
        ssccs |= {a.child_sscc for a in self.links if a.child_sscc}
        units = list(session.scalars(select(LogisticUnit).where(LogisticUnit.sscc.in_(ssccs))))
        self.unit_uri = {u.sscc: unit_uri(u.sscc, u.epc) for u in units}
        self.unit_epc = {u.epc: self.unit_uri[u.sscc] for u in units if u.epc}
        self.points = {p.id: p for p in session.scalars(select(ReadPoint))}

    def at_point(self, point_id: str) -> dict[str, Any]:
        point = self.points.get(point_id)
        where: dict[str, Any] = {"read_point": read_point_uri(point_id)}
        if point is not None:
            where["biz_location"] = zone_uri(point.zone_id)
            if point.business_step in OBSERVED_STEPS:
                where["biz_step"] = point.business_step
        return where


def _observe(event_id: str, at: datetime, epcs: list[str], **where: Any) -> ObjectEvent:
    return ObjectEvent(
        event_id=event_id,
        event_time=at,
        event_time_zone_offset=UTC_OFFSET,
        action="OBSERVE",
        epc_list=tuple(sorted(set(epcs))),
        **where,
    )


def _reads(session: Session, selection: Selection, names: _Names) -> Iterator[ObjectEvent]:
    epc_uri = {i.epc: names.uri[i.id] for i in names.items.values() if i.epc}
    epc_uri |= names.unit_epc
    query = select(Observation).where(
        Observation.epc.in_(list(epc_uri)), *selection.within(Observation.first_seen)
    )
    for o in session.scalars(query.order_by(Observation.first_seen)):
        key = _id("observation", o.gateway_id, o.seq)
        yield _observe(key, o.first_seen, [epc_uri[o.epc]], **names.at_point(o.read_point))


def _scans(session: Session, selection: Selection, names: _Names) -> Iterator[ObjectEvent]:
    # keyed as a scan names an item: a scan of a unit has neither
    by_sgtin: dict[tuple[str | None, str | None], str] = {
        (i.gtin, i.serial): names.uri[i.id] for i in names.items.values()
    }
    query = select(Scan).where(*selection.within(Scan.scanned_at))
    keys = [tuple_(Scan.gtin, Scan.serial).in_(list(by_sgtin))] if by_sgtin else []
    keys += [Scan.sscc.in_(list(names.unit_uri))] if names.unit_uri else []
    if not keys:
        return
    query = query.where(or_(*keys))
    for scan in session.scalars(query.order_by(Scan.scanned_at, Scan.id)):
        uri = names.unit_uri.get(scan.sscc or "") or by_sgtin.get((scan.gtin, scan.serial))
        if uri is not None:
            where = names.at_point(scan.read_point_id)
            yield _observe(_id("scan", scan.id), scan.scanned_at, [uri], **where)


def _movements(session: Session, selection: Selection, names: _Names) -> Iterator[ObjectEvent]:
    """Loading, departure, receiving and delivery of transfers and shipments."""
    records_of: tuple[_Records, ...] = (
        ("transfer", Transfer, TransferItem, TransferStateChange, "transfer_id", TRANSFER_MOVES),
        ("shipment", Shipment, ShipmentItem, ShipmentStateChange, "shipment_id", SHIPMENT_MOVES),
    )
    for kind, model, line_model, history, column, moves in records_of:
        # the selects are typed: of a union of classes, select() would infer their base
        of_lines: Select[TransferItem | ShipmentItem] = select(line_model)
        of_records: Select[Transfer | Shipment] = select(model)
        of_changes: Select[TransferStateChange | ShipmentStateChange] = select(history)
        lines = of_lines.where(line_model.item_id.in_(list(names.uri)))
        by_record: dict[str, list[Any]] = defaultdict(list)
        for line in session.scalars(lines):
            if line.item_id in names.uri:
                by_record[getattr(line, column)].append(line)
        records = session.scalars(of_records.where(model.id.in_(list(by_record))))
        for record in records:
            yield from _moves(kind, record, by_record[record.id], names, moves, selection)
        changes = of_changes.where(
            getattr(history, column).in_(list(by_record)), history.state.in_(DEPARTURES)
        )
        for change in session.scalars(changes.where(*selection.within(history.at))):
            record_id = getattr(change, column)
            loaded = [names.uri[ln.item_id] for ln in by_record[record_id] if ln.loaded_at]
            if loaded:
                yield ObjectEvent(
                    event_id=_id(kind, record_id, "departing", change.id),
                    event_time=change.at,
                    event_time_zone_offset=UTC_OFFSET,
                    action="OBSERVE",
                    biz_step="departing",
                    disposition="in_transit",
                    epc_list=tuple(sorted(set(loaded))),
                )


# kind, record, its lines, its state changes, the lines' column naming it, its moves
_Records = tuple[
    str,
    type[Transfer | Shipment],
    type[TransferItem | ShipmentItem],
    type[TransferStateChange | ShipmentStateChange],
    str,
    tuple[tuple[str, str, str, str], ...],
]

DEPARTURES = ("in_transit", "shipped")
# (line time attribute, record zone attribute, bizStep, disposition)
TRANSFER_MOVES = (
    ("loaded_at", "truck_zone_id", "loading", "in_transit"),
    ("received_at", "receiving_zone_id", "receiving", "in_progress"),
)
SHIPMENT_MOVES = (
    ("loaded_at", "truck_zone_id", "loading", "in_transit"),
    ("delivered_at", "delivery_zone_id", "accepting", "in_progress"),
)


def _moves(
    kind: str,
    record: Any,
    lines: list[Any],
    names: _Names,
    moves: tuple[tuple[str, str, str, str], ...],
    selection: Selection,
) -> Iterator[ObjectEvent]:
    for attribute, zone_attribute, step, disposition in moves:
        at_time: dict[datetime, list[str]] = defaultdict(list)
        for line in lines:
            at = getattr(line, attribute)
            if at is not None and _inside(at, selection):
                at_time[at].append(names.uri[line.item_id])
        zone = getattr(record, zone_attribute)
        for at, epcs in sorted(at_time.items()):
            yield ObjectEvent(
                event_id=_id(kind, record.id, step, at.isoformat()),
                event_time=at,
                event_time_zone_offset=UTC_OFFSET,
                action="OBSERVE",
                biz_step=step,
                disposition=disposition,
                biz_location=None if zone is None else zone_uri(zone),
                epc_list=tuple(sorted(set(epcs))),
            )


def _inside(at: datetime, selection: Selection) -> bool:
    return (selection.start is None or at >= selection.start) and (
        selection.end is None or at <= selection.end
    )


def _packing(selection: Selection, names: _Names) -> Iterator[AggregationEvent]:
    for a in names.links:
        child = (
            names.uri.get(a.child_item_id)
            if a.child_item_id is not None
            else names.unit_uri.get(a.child_sscc or "")
        )
        parent = names.unit_uri.get(a.parent_sscc)
        if child is None or parent is None:
            continue
        for action, at, step in (
            ("ADD", a.packed_at, "packing"),
            ("DELETE", a.unpacked_at, "unpacking"),
        ):
            if at is not None and _inside(at, selection):
                yield AggregationEvent(
                    event_id=_id("aggregation", a.id, action),
                    event_time=at,
                    event_time_zone_offset=UTC_OFFSET,
                    action=action,
                    biz_step=step,
                    parent_id=parent,
                    child_epcs=(child,),
                )


def _stays(session: Session, selection: Selection, names: _Names) -> Iterator[ObjectEvent]:
    """Each stay of the items in a zone (same zone, same times) with the zone's temperatures."""
    query = select(CustodyInterval).where(CustodyInterval.item_id.in_(list(names.uri)))
    if selection.end is not None:
        query = query.where(CustodyInterval.started_at <= selection.end)
    if selection.start is not None:
        query = query.where(
            or_(CustodyInterval.ended_at.is_(None), CustodyInterval.ended_at >= selection.start)
        )
    stays: dict[tuple[str, datetime, datetime | None], list[str]] = defaultdict(list)
    for c in session.scalars(query):
        stays[(c.zone_id, c.started_at, c.ended_at)].append(names.uri[c.item_id])
    sensors_of: dict[str, list[str]] = defaultdict(list)
    for sensor in session.scalars(
        select(Sensor).where(Sensor.zone_id.in_({z for z, _, _ in stays}))
    ):
        sensors_of[sensor.zone_id].append(sensor.id)
    now = utcnow()
    for (zone, started, ended), epcs in sorted(stays.items(), key=lambda s: (s[0][1], s[0][0])):
        start = max(started, selection.start) if selection.start else started
        end = min(x for x in (ended, selection.end, now) if x is not None)
        elements = _conditions(session, sensors_of.get(zone, []), start, end)
        if elements:
            yield ObjectEvent(
                event_id=_id("stay", zone, start.isoformat(), end.isoformat(), *sorted(epcs)),
                event_time=end,
                event_time_zone_offset=UTC_OFFSET,
                action="OBSERVE",
                biz_step="sensor_reporting",
                biz_location=zone_uri(zone),
                epc_list=tuple(sorted(set(epcs))),
                sensor_elements=tuple(elements),
            )


def _conditions(
    session: Session, sensors: Iterable[str], start: datetime, end: datetime
) -> list[SensorElement]:
    query = (
        select(
            Reading.sensor_id,
            func.min(Reading.value),
            func.max(Reading.value),
            func.avg(Reading.value),
        )
        .where(
            Reading.sensor_id.in_(list(sensors)),
            Reading.quantity == "temperature",
            Reading.quality == "ok",
            Reading.value.is_not(None),
            Reading.taken_at >= start,
            Reading.taken_at <= end,
        )
        .group_by(Reading.sensor_id)
        .order_by(Reading.sensor_id)
    )
    return [
        SensorElement(
            start_time=start,
            end_time=end,
            device_id=sensor_uri(sensor),
            reports=(
                SensorReport(
                    type=TEMPERATURE,
                    min_value=low,
                    max_value=high,
                    mean_value=round(float(mean), 3),
                    uom=CELSIUS,
                ),
            ),
        )
        for sensor, low, high, mean in session.execute(query)
    ]
