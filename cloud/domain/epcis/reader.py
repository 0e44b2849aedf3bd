"""EPCIS 2.0 import: trading partners' JSON / JSON-LD documents -> events.

Reads the compacted JSON-LD that EPCIS 2.0 partners exchange (any @context, including none).
ObjectEvents and AggregationEvents are mapped; every other event type comes back as an
OtherEvent holding the event as received, and mapped events keep it in `raw`, so nothing a
partner sent is dropped. A document that cannot be read raises EpcisError naming the event
index and the JSON path of the field.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from cloud.domain.epcis.events import (
    AggregationEvent,
    EpcisError,
    Event,
    ObjectEvent,
    OtherEvent,
    SensorElement,
    SensorReport,
)

T = TypeVar("T")

# where each document type keeps its events
EVENT_LISTS = {
    "EPCISDocument": ("epcisBody", "eventList"),
    "EPCISQueryDocument": ("epcisBody", "queryResults", "resultsBody", "eventList"),
}
EVENT_TYPE_PREFIXES = ("epcis:", "https://ref.gs1.org/epcis/")


def parse_document(data: Mapping[str, Any]) -> list[Event]:
    """The events of an EPCISDocument or EPCISQueryDocument, in document order."""
    return [_event(index, raw) for index, raw in enumerate(_event_list(data))]


def _event_list(data: object) -> list[Any]:
    if not isinstance(data, Mapping):
        raise EpcisError(f"not a JSON object but {type(data).__name__}", "document")
    kind = data.get("type")
    if kind not in EVENT_LISTS:
        raise EpcisError(f"not EPCISDocument or EPCISQueryDocument: {kind!r}", "type")
    # GS1's own examples omit schemaVersion or write it as a number; refuse only other majors
    version = data.get("schemaVersion")
    if version is not None and str(version).split(".")[0] != "2":
        raise EpcisError(f"EPCIS {version} is not EPCIS 2.x", "schemaVersion")
    node: Any = data
    path = EVENT_LISTS[kind]
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping) or key not in node:
            raise EpcisError("missing", ".".join(path[: depth + 1]))
        node = node[key]
    if not isinstance(node, list):
        raise EpcisError(f"not a list but {type(node).__name__}", ".".join(path))
    return node


def _event(index: int, raw: object) -> Event:
    if not isinstance(raw, Mapping):
        raise EpcisError(f"not a JSON object but {type(raw).__name__}", index=index)
    kind = raw.get("type")
    if not isinstance(kind, str) or not kind:
        raise EpcisError(f"missing or not a string: {kind!r}", "type", index=index)
    for prefix in EVENT_TYPE_PREFIXES:
        kind = kind.removeprefix(prefix)
    kept = copy.deepcopy(dict(raw))
    reader = READERS.get(kind)
    if reader is None:
        return OtherEvent(type=kind, raw=kept)
    try:
        return reader(_Fields(raw), kept)
    except EpcisError as error:
        raise error.within("", index) from error


class _Fields:
    """Typed reads of one JSON object; errors name the field by its JSON path."""

    def __init__(self, data: Mapping[str, Any], path: str = ""):
        self.data, self.path = data, path

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, kinds: type | tuple[type, ...], what: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None:
            if required:
                raise EpcisError("missing", self.name(key))
            return None
        if isinstance(value, bool) or not isinstance(value, kinds):  # JSON true is no number
            raise EpcisError(f"not {what}: {value!r}", self.name(key))
        return value

    def text(self, key: str, required: bool = False) -> str | None:
        value: str | None = self._get(key, str, "a string", required)
        return value

    def number(self, key: str) -> float | None:
        value = self._get(key, (int, float), "a number", False)
        return None if value is None else float(value)

    def time(self, key: str, required: bool = False) -> datetime | None:
        text = self._get(key, str, "an RFC 3339 date-time", required)
        if text is None:
            return None
        try:  # RFC 3339 allows a lower-case t and z, which fromisoformat does not
            value = datetime.fromisoformat(text.upper())
        except ValueError:
            value = None
        if value is None or value.utcoffset() is None:
            raise EpcisError(f"not an RFC 3339 date-time with offset: {text!r}", self.name(key))
        return value

    def uris(self, key: str) -> tuple[str, ...]:
        values = self._get(key, list, "a list", False) or []
        for position, value in enumerate(values):
            if not isinstance(value, str):
                raise EpcisError(f"not a string: {value!r}", self.name(f"{key}[{position}]"))
        return tuple(values)

    def location(self, key: str) -> str | None:
        place = self._get(key, Mapping, "an object", False)
        return None if place is None else _Fields(place, self.name(key)).text("id", True)

    def child(self, key: str) -> _Fields:
        return _Fields(self._get(key, Mapping, "an object", False) or {}, self.name(key))

    def children(self, key: str, required: bool = False) -> list[_Fields]:
        items = self._get(key, list, "a list", required) or []
        for position, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise EpcisError(f"not an object: {item!r}", self.name(f"{key}[{position}]"))
        return [_Fields(item, self.name(f"{key}[{n}]")) for n, item in enumerate(items)]

    def build(self, cls: Callable[..., T], **values: Any) -> T:
        """cls(**values), its complaints located at this object's path."""
        try:
            return cls(**values)
        except EpcisError as error:
            raise error.within(self.path) from error


def _common(fields: _Fields, raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_time": fields.time("eventTime", required=True),
        "event_time_zone_offset": fields.text("eventTimeZoneOffset", required=True),
        "action": fields.text("action", required=True),
        "biz_step": fields.text("bizStep"),
        "disposition": fields.text("disposition"),
        "read_point": fields.location("readPoint"),
        "biz_location": fields.location("bizLocation"),
        "sensor_elements": tuple(map(_element, fields.children("sensorElementList"))),
        "event_id": fields.text("eventID"),
        "raw": raw,
    }


def _object_event(fields: _Fields, raw: dict[str, Any]) -> ObjectEvent:
    return fields.build(ObjectEvent, **_common(fields, raw), epc_list=fields.uris("epcList"))


def _aggregation_event(fields: _Fields, raw: dict[str, Any]) -> AggregationEvent:
    return fields.build(
        AggregationEvent,
        **_common(fields, raw),
        parent_id=fields.text("parentID"),
        child_epcs=fields.uris("childEPCs"),
    )


READERS: dict[str, Callable[[_Fields, dict[str, Any]], Event]] = {
    "ObjectEvent": _object_event,
    "AggregationEvent": _aggregation_event,
}


def _element(fields: _Fields) -> SensorElement:
    metadata = fields.child("sensorMetadata")
    return fields.build(
        SensorElement,
        reports=tuple(map(_report, fields.children("sensorReport", required=True))),
        time=metadata.time("time"),
        start_time=metadata.time("startTime"),
        end_time=metadata.time("endTime"),
        device_id=metadata.text("deviceID"),
    )


def _report(fields: _Fields) -> SensorReport:
    return fields.build(
        SensorReport,
        type=fields.text("type", required=True),
        value=fields.number("value"),
        min_value=fields.number("minValue"),
        max_value=fields.number("maxValue"),
        mean_value=fields.number("meanValue"),
        uom=fields.text("uom"),
        time=fields.time("time"),
        device_id=fields.text("deviceID"),
    )
