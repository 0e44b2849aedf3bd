"""EPCIS 2.0 export: events -> a JSON-LD EPCISDocument for trading partners and regulators.

Times are written in each event's own eventTimeZoneOffset (UTC as Z), to the millisecond or,
when the datetime carries them, the microsecond, so that an import gives the same instants back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, tzinfo
from typing import Any

from cloud.domain.epcis.events import (
    LOCATIONS,
    REPORT_NUMBERS,
    AggregationEvent,
    EpcisError,
    Event,
    ObjectEvent,
    OtherEvent,
    SensorElement,
    SensorReport,
    offset_zone,
)

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
SCHEMA_VERSION = "2.0"


def document(events: Iterable[Event], creation_date: datetime) -> dict[str, Any]:
    """An EPCIS 2.0 EPCISDocument (JSON-LD) holding `events`, ready for json.dumps."""
    if not isinstance(creation_date, datetime) or creation_date.utcoffset() is None:
        raise EpcisError(f"not a time-zone-aware datetime: {creation_date!r}", "creationDate")
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": _time(creation_date, UTC),
        "epcisBody": {"eventList": [event_json(event) for event in events]},
    }


def event_json(event: Event) -> dict[str, Any]:
    """One event as EPCIS 2.0 JSON; an OtherEvent is written back exactly as it was received."""
    if isinstance(event, OtherEvent):
        return copy.deepcopy(dict(event.raw))
    zone = offset_zone(event.event_time_zone_offset)
    out: dict[str, Any] = {
        "type": type(event).__name__,
        "eventTime": _time(event.event_time, zone),
        "eventTimeZoneOffset": event.event_time_zone_offset,
    }
    if event.event_id is not None:
        out["eventID"] = event.event_id
    out.update(WHAT[type(event)](event))
    out["action"] = event.action
    if event.biz_step is not None:
        out["bizStep"] = event.biz_step
    if event.disposition is not None:
        out["disposition"] = event.disposition
    for name, json_field in LOCATIONS:
        if getattr(event, name) is not None:
            out[json_field.removesuffix(".id")] = {"id": getattr(event, name)}
    if event.sensor_elements:
        out["sensorElementList"] = [_element(item, zone) for item in event.sensor_elements]
    return out


def _object_what(event: ObjectEvent) -> dict[str, Any]:
    return {"epcList": list(event.epc_list)}


def _aggregation_what(event: AggregationEvent) -> dict[str, Any]:
    out: dict[str, Any] = {} if event.parent_id is None else {"parentID": event.parent_id}
    if event.child_epcs:  # none with DELETE: every child leaves the parent
        out["childEPCs"] = list(event.child_epcs)
    return out


WHAT: dict[type, Callable[[Any], dict[str, Any]]] = {
    ObjectEvent: _object_what,
    AggregationEvent: _aggregation_what,
}


def _element(element: SensorElement, zone: tzinfo) -> dict[str, Any]:
    metadata = {
        json_field: _time(value, zone) if isinstance(value, datetime) else value
        for json_field, value in (
            ("time", element.time),
            ("startTime", element.start_time),
            ("endTime", element.end_time),
            ("deviceID", element.device_id),
        )
        if value is not None
    }
    out: dict[str, Any] = {"sensorMetadata": metadata} if metadata else {}
    out["sensorReport"] = [_report(report, zone) for report in element.reports]
    return out


def _report(report: SensorReport, zone: tzinfo) -> dict[str, Any]:
    out: dict[str, Any] = {"type": report.type}
    if report.device_id is not None:
        out["deviceID"] = report.device_id
    if report.time is not None:
        out["time"] = _time(report.time, zone)
    for name, json_field in REPORT_NUMBERS:
        if getattr(report, name) is not None:
            out[json_field] = getattr(report, name)
    if report.uom is not None:
        out["uom"] = report.uom
    return out


def _time(value: datetime, zone: tzinfo) -> str:
    local = value.astimezone(zone)
    precision = "milliseconds" if local.microsecond % 1000 == 0 else "microseconds"
    text = local.isoformat(timespec=precision)
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
