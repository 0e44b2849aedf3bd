"""EPCIS 2.0 import into custody: a trading partner's events become sightings (scans).

ObjectEvents (ADD, OBSERVE) and AggregationEvents name objects at a place. Each EPC that is
one of our items or logistic units becomes a Scan at the read point the event names (our
urn:coldchain:readpoint: URNs or a bare read point id), or, failing that, at a read point of
the zone its bizLocation names; then the custody of what was sighted is rebuilt. An event is
recorded by eventID (or, without one, the SHA-256 of its JSON) once it has become at least
one sighting, so sending a document twice changes nothing; events whose place or objects
are unknown are reported and not recorded, so they can be sent again once the read point or
item exists. Nothing here commits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import ReadPoint
from cloud.adapters.orm.traceability import EpcisReceipt, LogisticUnit, Scan
from cloud.domain.clock import utcnow
from cloud.domain.epcis import AggregationEvent, ObjectEvent, OtherEvent, parse_document
from cloud.domain.epcis.ids import READ_POINT, ZONE, local_id, subject_of
from cloud.service_layer.custody import find_item, refresh_subjects


@dataclass
class ImportReport:
    """What an import did, and what it could not place."""

    events: int = 0
    imported: int = 0
    duplicates: int = 0
    sightings: int = 0
    custody_intervals: int = 0
    unknown_epcs: list[str] = field(default_factory=list)
    unknown_locations: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "sightings": self.sightings,
            "custody_intervals": self.custody_intervals,
            "unknown_epcs": self.unknown_epcs,
            "unknown_locations": self.unknown_locations,
            "skipped": self.skipped,
        }


def event_key(event: ObjectEvent | AggregationEvent) -> str:
    """The eventID, else a hash of the event's JSON as received."""
    if event.event_id is not None:
        return event.event_id
    raw = json.dumps(event.raw, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def import_document(session: Session, data: Mapping[str, Any], actor: str) -> ImportReport:
    """Take a partner's EPCISDocument into custody (raises EpcisError if it cannot be read)."""
    events = parse_document(data)
    report = ImportReport(events=len(events))
    places = _Places(session)
    item_ids: set[int] = set()
    ssccs: set[str] = set()
    unknown_epcs: set[str] = set()
    unknown_places: set[str] = set()
    for index, event in enumerate(events):
        if isinstance(event, OtherEvent):
            report.skipped.append(f"event {index}: {event.type} is not mapped to custody")
            continue
        if isinstance(event, ObjectEvent) and event.action == "DELETE":
            report.skipped.append(f"event {index}: ObjectEvent DELETE decommissions, no sighting")
            continue
        key = event_key(event)
        if session.get(EpcisReceipt, key) is not None:
            report.duplicates += 1
            continue
        point = places.point_for(event)
        if point is None:
            unknown_places.add(event.read_point or event.biz_location or f"event {index}: none")
            continue
        scans = []
        for uri in _epcs(event):
            scan = _sighting(session, uri, point, event, actor)
            if scan is None:
                unknown_epcs.add(uri)
                continue
            scans.append(scan)
            if scan.sscc is not None:
                ssccs.add(scan.sscc)
            else:
                item = find_item(session, scan.gtin or "", scan.serial or "")
                assert item is not None
                item_ids.add(item.id)
        if not scans:
            continue
        session.add_all(scans)
        session.add(
            EpcisReceipt(
                event_key=key,
                event_time=event.event_time,
                received_at=utcnow(),
                actor=actor,
                sightings=len(scans),
            )
        )
        report.imported += 1
        report.sightings += len(scans)
    session.flush()
    report.custody_intervals = refresh_subjects(session, item_ids, ssccs)
    report.unknown_epcs = sorted(unknown_epcs)
    report.unknown_locations = sorted(unknown_places)
    return report


def _epcs(event: ObjectEvent | AggregationEvent) -> list[str]:
    if isinstance(event, ObjectEvent):
        return list(event.epc_list)
    parent = [] if event.parent_id is None else [event.parent_id]
    return parent + list(event.child_epcs)


def _sighting(
    session: Session, uri: str, point: str, event: ObjectEvent | AggregationEvent, actor: str
) -> Scan | None:
    subject = subject_of(uri)
    if subject is None:
        return None
    if subject.sscc is not None:
        if session.get(LogisticUnit, subject.sscc) is None:
            return None
    elif find_item(session, subject.gtin or "", subject.serial or "") is None:
        return None
    return Scan(
        read_point_id=point,
        scanned_at=event.event_time,
        data=uri,
        gtin=subject.gtin,
        serial=subject.serial,
        sscc=subject.sscc,
        actor=actor,
    )


class _Places:
    """Our read points, found from an event's readPoint or, failing that, its bizLocation."""

    def __init__(self, session: Session):
        self.points = {p.id: p for p in session.scalars(select(ReadPoint).order_by(ReadPoint.id))}

    def point_for(self, event: ObjectEvent | AggregationEvent) -> str | None:
        if event.read_point is not None:
            point = local_id(event.read_point, READ_POINT)
            if point in self.points:
                return point
        if event.biz_location is not None:
            zone = local_id(event.biz_location, ZONE)
            in_zone = [p for p in self.points.values() if p.zone_id == zone]
            same_step = [p for p in in_zone if p.business_step == event.biz_step]
            if same_step or in_zone:
                return (same_step or in_zone)[0].id
        return None
