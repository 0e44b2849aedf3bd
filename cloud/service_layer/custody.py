"""Custody in the database: derived per item from stored RFID reads, scans, packing and
lifecycle records, and the questions asked of it (where is X, what is in Z, a batch's path).

A rebuild recomputes an item's whole timeline from every stored event, so a truck's backlog
arriving a day late corrects the timeline instead of appending to it. Everything runs in the
caller's session and transaction; nothing here commits.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select, tuple_
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import Observation, ReadPoint, Site, Zone
from cloud.adapters.orm.traceability import (
    Aggregation,
    CustodyInterval,
    Item,
    LogisticUnit,
    Scan,
    Shipment,
    ShipmentItem,
    Transfer,
    TransferItem,
)
from cloud.domain.custody import (
    CustodyEvent,
    Pack,
    Place,
    Sighting,
    Source,
    Unpack,
    derive_custody,
    item_key,
    unit_key,
)
from edge.gs1 import ElementStringError, parse_bracketed, parse_scan

log = logging.getLogger(__name__)
CUSTODY_LOCK = 0x43435553  # PostgreSQL advisory lock key held while custody is rebuilt
CHUNK = 500  # items per rebuild round trip; keeps IN lists and memory bounded


def record_scan(
    session: Session, data: str, read_point: str, scanned_at: datetime, actor: str | None = None
) -> Scan:
    """Parse a barcode scan (element string, Digital Link URI) and store it as a sighting."""
    parsed = parse_scan(data)
    if parsed.sscc is None and (parsed.gtin is None or parsed.serial is None):
        raise ValueError(f"scan {data!r} names neither a serialised item (01)+(21) nor an SSCC")
    scan = Scan(
        read_point_id=read_point,
        scanned_at=scanned_at,
        data=data,
        gtin=parsed.gtin,
        serial=parsed.serial,
        lot=parsed.lot,
        sscc=parsed.sscc,
        actor=actor,
    )
    session.add(scan)
    return scan


def serialise_custody(session: Session) -> None:
    """One custody rebuild at a time, until the transaction ends (PostgreSQL; SQLite has one
    writer anyway). Two transactions rebuilding one item at once would each miss the other's
    uncommitted events and both keep their intervals: every path that rebuilds (ingest, API
    scans, EPCIS capture, movements) takes this lock first, through `rebuild_custody`."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CUSTODY_LOCK)))


def rebuild_custody(session: Session, item_ids: Iterable[int] | None = None) -> int:
    """Derive and store the custody of these items (all, if None); returns intervals written.
    Waits for any other transaction's rebuild to end first (`serialise_custody`)."""
    serialise_custody(session)
    ids = sorted(session.scalars(select(Item.id)) if item_ids is None else set(item_ids))
    written = 0
    for start in range(0, len(ids), CHUNK):
        written += _rebuild(session, ids[start : start + CHUNK])
    return written


def refresh_custody(session: Session, epcs: Iterable[str]) -> int:
    """Rebuild the custody of the items behind these EPCs: items, or units and their contents."""
    epcs = set(epcs)
    if not epcs:
        return 0
    ids = set(session.scalars(select(Item.id).where(Item.epc.in_(epcs))))
    units = set(session.scalars(select(LogisticUnit.sscc).where(LogisticUnit.epc.in_(epcs))))
    return refresh_subjects(session, ids, units)


def refresh_subjects(session: Session, item_ids: Iterable[int], ssccs: Iterable[str]) -> int:
    """Rebuild the custody of these items and of everything packed in these units."""
    ids, units = set(item_ids), set(ssccs)
    seen: set[str] = set()
    while units:  # walk down: pallets hold cases hold items
        seen |= units
        links = list(session.scalars(select(Aggregation).where(Aggregation.parent_sscc.in_(units))))
        ids |= {a.child_item_id for a in links if a.child_item_id is not None}
        units = {a.child_sscc for a in links if a.child_sscc is not None} - seen
    return rebuild_custody(session, ids)


def _rebuild(session: Session, ids: list[int]) -> int:
    items = list(session.scalars(select(Item).where(Item.id.in_(ids))))
    key_of = {item.id: item_key(item.gtin, item.serial) for item in items}
    links = links_above(session, ids)
    ssccs = {a.parent_sscc for a in links}
    units = list(session.scalars(select(LogisticUnit).where(LogisticUnit.sscc.in_(ssccs))))
    subject_of_epc = {i.epc: key_of[i.id] for i in items if i.epc}
    subject_of_epc |= {u.epc: unit_key(u.sscc) for u in units if u.epc}
    gather = _Gather(session)
    events: list[CustodyEvent] = [
        *gather.reads(subject_of_epc),
        *gather.scans([(i.gtin, i.serial) for i in items], ssccs),
        *gather.records(key_of),
        *_packing(links, key_of),
    ]
    timelines = derive_custody(events, key_of.values())
    item_of = {key: item_id for item_id, key in key_of.items()}
    session.execute(delete(CustodyInterval).where(CustodyInterval.item_id.in_(ids)))
    rows = [
        CustodyInterval(
            item_id=item_of[key], zone_id=i.zone, started_at=i.start, ended_at=i.end, basis=i.basis
        )
        for key, timeline in timelines.items()
        for i in timeline
    ]
    session.add_all(rows)
    session.flush()
    return len(rows)


def links_above(session: Session, ids: list[int]) -> list[Aggregation]:
    """Every packing of these items, and of the units they were in, up to the outermost."""
    links = list(session.scalars(select(Aggregation).where(Aggregation.child_item_id.in_(ids))))
    seen: set[str] = set()
    frontier = {a.parent_sscc for a in links}
    while frontier:
        seen |= frontier
        above = select(Aggregation).where(Aggregation.child_sscc.in_(frontier))
        links += session.scalars(above)
        frontier = {a.parent_sscc for a in links} - seen
    return links


class _Gather:
    """Stored events of the subjects as sightings, placed through read points and zones."""

    def __init__(self, session: Session):
        self.session = session
        truck_sites = set(session.scalars(select(Site.id).where(Site.kind == "truck")))
        self.places = {
            z.id: Place(z.id, z.site_id, z.kind == "truck_compartment" or z.site_id in truck_sites)
            for z in session.scalars(select(Zone))
        }
        self.points = {p.id: p for p in session.scalars(select(ReadPoint))}

    def at_point(
        self, subject: str, point_id: str, at: datetime, source: Source, direction: str | None
    ) -> list[Sighting]:
        point = self.points.get(point_id)
        place = self.places.get(point.zone_id) if point is not None else None
        if point is None or place is None:
            # The gateway's inventory has not arrived yet; a later rebuild places this read.
            log.debug("read point %s is unknown; a sighting of %s waits", point_id, subject)
            return []
        return [Sighting(subject, place, point.business_step, at, source, direction)]

    def reads(self, subject_of_epc: dict[str, str]) -> Iterator[Sighting]:
        query = select(Observation).where(Observation.epc.in_(list(subject_of_epc)))
        for o in self.session.scalars(query) if subject_of_epc else ():
            subject = subject_of_epc[o.epc]
            yield from self.at_point(subject, o.read_point, o.first_seen, Source.RFID, o.direction)

    def scans(self, sgtins: list[tuple[str, str]], ssccs: Collection[str]) -> Iterator[Sighting]:
        keys = or_(tuple_(Scan.gtin, Scan.serial).in_(sgtins), Scan.sscc.in_(ssccs))
        for scan in self.session.scalars(select(Scan).where(keys)):
            if scan.sscc is not None and scan.sscc in ssccs:
                subject = unit_key(scan.sscc)
            elif scan.gtin is not None and scan.serial is not None:
                subject = item_key(scan.gtin, scan.serial)
            else:
                continue
            yield from self.at_point(
                subject, scan.read_point_id, scan.scanned_at, Source.SCAN, None
            )

    def records(self, key_of: dict[int, str]) -> Iterator[Sighting]:
        """Loading puts items in the truck's zone; receiving and delivery where they arrived."""
        on = select(TransferItem).where(TransferItem.item_id.in_(list(key_of)))
        rows = list(self.session.scalars(on))
        ids = {r.transfer_id for r in rows}
        transfers = {
            t.id: t for t in self.session.scalars(select(Transfer).where(Transfer.id.in_(ids)))
        }
        for row in rows:
            t = transfers[row.transfer_id]
            yield from self.record(key_of[row.item_id], t.truck_zone_id, "loading", row.loaded_at)
            yield from self.record(
                key_of[row.item_id], t.receiving_zone_id, "receiving", row.received_at
            )
        shipped = list(
            self.session.scalars(select(ShipmentItem).where(ShipmentItem.item_id.in_(list(key_of))))
        )
        ids = {r.shipment_id for r in shipped}
        shipments = {
            s.id: s for s in self.session.scalars(select(Shipment).where(Shipment.id.in_(ids)))
        }
        for line in shipped:
            s = shipments[line.shipment_id]
            yield from self.record(key_of[line.item_id], s.truck_zone_id, "loading", line.loaded_at)
            yield from self.record(
                key_of[line.item_id], s.delivery_zone_id, "receiving", line.delivered_at
            )

    def record(
        self, subject: str, zone: str | None, step: str, at: datetime | None
    ) -> list[Sighting]:
        if zone is None or at is None or zone not in self.places:
            return []
        return [Sighting(subject, self.places[zone], step, at, Source.RECORD)]


def _packing(links: list[Aggregation], key_of: dict[int, str]) -> Iterator[Pack | Unpack]:
    for a in links:
        if a.child_item_id is not None:
            child = key_of.get(a.child_item_id)
        else:
            child = unit_key(a.child_sscc) if a.child_sscc is not None else None
        if child is None:
            continue
        parent = unit_key(a.parent_sscc)
        yield Pack(parent, child, a.packed_at)
        if a.unpacked_at is not None:
            yield Unpack(parent, child, a.unpacked_at)


# --- questions asked of custody -----------------------------------------------------------


def find_item(session: Session, gtin: str, serial: str) -> Item | None:
    """The item with this SGTIN, if registered."""
    return session.scalars(select(Item).where(Item.gtin == gtin, Item.serial == serial)).first()


def item_by_reference(session: Session, ref: str) -> Item | None:
    """An item by EPC (hex), (01)<gtin>(21)<serial> or <gtin>+<serial>; ValueError if `ref`
    is none of those."""
    if HEX_EPC.fullmatch(ref):
        return session.scalars(select(Item).where(Item.epc == ref.upper())).first()
    gtin, plus, serial = ref.partition("+")
    if not plus:
        try:
            parsed = parse_bracketed(ref)
        except ElementStringError as exc:
            raise ValueError(REFERENCE_FORMS.format(ref=ref)) from exc
        gtin, serial = parsed.gtin or "", parsed.get("21") or ""
    if not gtin or not serial:
        raise ValueError(REFERENCE_FORMS.format(ref=ref))
    return find_item(session, gtin, serial)


HEX_EPC = re.compile(r"[0-9A-Fa-f]{24,}")
REFERENCE_FORMS = "{ref!r} is not an EPC (hex), (01)<gtin>(21)<serial> or <gtin>+<serial>"


def items_scanned(session: Session, scan: Scan) -> set[int]:
    """The items a scan places: the item itself, or everything packed in the unit."""
    if scan.gtin and scan.serial:
        item = find_item(session, scan.gtin, scan.serial)
        return {item.id} if item is not None else set()
    ids: set[int] = set()
    units = {scan.sscc} if scan.sscc is not None else set()
    seen: set[str] = set()
    while units:
        seen |= units
        links = list(session.scalars(select(Aggregation).where(Aggregation.parent_sscc.in_(units))))
        ids |= {a.child_item_id for a in links if a.child_item_id is not None}
        units = {a.child_sscc for a in links if a.child_sscc is not None} - seen
    return ids


def current_custody(session: Session, item_id: int) -> CustodyInterval | None:
    """Where the item is now: its open interval; None if not known to be anywhere now."""
    query = select(CustodyInterval).where(
        CustodyInterval.item_id == item_id, CustodyInterval.ended_at.is_(None)
    )
    return session.scalars(query).first()


def items_in_zone(session: Session, zone_id: str) -> list[Item]:
    """The items in the zone now."""
    query = (
        select(Item)
        .join(CustodyInterval, CustodyInterval.item_id == Item.id)
        .where(CustodyInterval.zone_id == zone_id, CustodyInterval.ended_at.is_(None))
        .order_by(Item.id)
    )
    return list(session.scalars(query))


def custody_in_zone(
    session: Session, zone_id: str, start: datetime, end: datetime
) -> list[CustodyInterval]:
    """The custody intervals in the zone touching [start, end]: what was there, and when."""
    return list(session.scalars(zone_window_query(zone_id, start, end)))


def zone_window_query(
    zone_id: str, start: datetime, end: datetime, *, rows: bool = False
) -> Select[*tuple[Any, ...]]:  # CustodyInterval, or INTERVAL_FIELDS
    """The query behind custody_in_zone, for callers that page it in SQL; rows=True selects
    INTERVAL_FIELDS as plain rows (no ORM objects: a page of them costs a third)."""
    return (
        (select(*INTERVAL_FIELDS) if rows else select(CustodyInterval))
        .where(
            CustodyInterval.zone_id == zone_id,
            CustodyInterval.started_at <= end,
            or_(CustodyInterval.ended_at.is_(None), CustodyInterval.ended_at >= start),
        )
        .order_by(CustodyInterval.started_at, CustodyInterval.item_id)
    )


INTERVAL_FIELDS = (
    CustodyInterval.item_id,
    CustodyInterval.zone_id,
    CustodyInterval.started_at,
    CustodyInterval.ended_at,
    CustodyInterval.basis,
)


def item_timeline(session: Session, item_id: int) -> list[CustodyInterval]:
    """The item's custody intervals, oldest first."""
    query = (
        select(CustodyInterval)
        .where(CustodyInterval.item_id == item_id)
        .order_by(CustodyInterval.started_at, CustodyInterval.id)
    )
    return list(session.scalars(query))


def batch_timeline(session: Session, batch_id: int) -> list[CustodyInterval]:
    """The custody intervals of every item of the batch, by item, oldest first."""
    return list(session.scalars(batch_timeline_query(batch_id)))


def batch_timeline_query(
    batch_id: int, start: datetime | None = None, end: datetime | None = None, *, rows: bool = False
) -> Select[*tuple[Any, ...]]:  # CustodyInterval, or INTERVAL_FIELDS
    """The query behind batch_timeline, narrowed to intervals touching [start, end]; rows=True
    selects INTERVAL_FIELDS as plain rows."""
    query = (
        (select(*INTERVAL_FIELDS) if rows else select(CustodyInterval))
        .join(Item, Item.id == CustodyInterval.item_id)
        .where(Item.batch_id == batch_id)
        .order_by(CustodyInterval.item_id, CustodyInterval.started_at, CustodyInterval.id)
    )
    if end is not None:
        query = query.where(CustodyInterval.started_at <= end)
    if start is not None:
        query = query.where(
            or_(CustodyInterval.ended_at.is_(None), CustodyInterval.ended_at >= start)
        )
    return query
