"""Raw reader output -> tag reads, by a reader profile. Pure: no I/O, no clock of its own.

Anything that is not a usable tag read raises `Rejected` with a short reason; the caller
counts it. An EPC must be hex (1 to 64 bytes); whether it decodes as a GS1 key is decided
later, so an SGTIN-198 or a blank tag is still observed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.rfid.profiles import SKIP, ReaderProfile

_HEX_EPC = re.compile(r"(?:[0-9A-F]{2}){2,64}")
_UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


class Rejected(ValueError):
    """Input that is not a usable tag read; str() is the reason counted, e.g. 'bad_epc'."""


@dataclass(frozen=True, slots=True)
class TagRead:
    """One raw read of one tag by one antenna."""

    epc: str
    antenna: int | None
    rssi: float | None
    at: datetime


def json_documents(payload: bytes) -> tuple[list[Any], int]:
    """The JSON documents in a payload (one, or one per line as NDJSON) and how many were bad."""
    try:
        return [json.loads(payload)], 0
    except (UnicodeDecodeError, json.JSONDecodeError):
        lines = [line for line in payload.splitlines() if line.strip()]
        if len(lines) < 2:
            raise Rejected("bad_json") from None
    documents = []
    for line in lines:
        try:
            documents.append(json.loads(line))
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
    return documents, len(lines) - len(documents)


def json_records(profile: ReaderProfile, document: Any) -> list[Any]:
    """The read objects of one JSON document."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and profile.records is not None:
        found = _at(document, profile.records)
        if isinstance(found, list):
            return found
    return [document]


def from_json(profile: ReaderProfile, record: Any, received: datetime) -> TagRead:
    """One read object -> a tag read."""
    if not isinstance(record, dict):
        raise Rejected("not_a_tag_read")
    fields = {name: _first(record, getattr(profile, name)) for name in profile.provides}
    return _tag_read(profile, fields, received)


def from_line(profile: ReaderProfile, raw: bytes, received: datetime) -> TagRead:
    """One line of a line-format reader -> a tag read."""
    try:
        text = raw.decode(profile.encoding).strip()
    except UnicodeDecodeError:
        raise Rejected("bad_line") from None
    if profile.pattern is not None:
        match = re.fullmatch(profile.pattern, text)
        if match is None:
            raise Rejected("not_a_tag_read")
        fields = {k: v for k, v in match.groupdict().items() if v is not None}
    else:
        parts = [p.strip() for p in text.split(profile.delimiter)]
        if len(parts) != len(profile.columns):
            raise Rejected("not_a_tag_read")
        fields = {c: p for c, p in zip(profile.columns, parts, strict=True) if c != SKIP and p}
    return _tag_read(profile, fields, received)


def normalise_epc(value: Any) -> str:
    """The EPC as upper-case hex without spaces; anything else is rejected."""
    if not isinstance(value, str):
        raise Rejected("bad_epc" if value is not None else "not_a_tag_read")
    text = "".join(value.split()).upper().removeprefix("0X")
    if not _HEX_EPC.fullmatch(text):
        raise Rejected("bad_epc")
    return text


def _tag_read(profile: ReaderProfile, fields: dict[str, Any], received: datetime) -> TagRead:
    if fields.get("epc") is None:
        raise Rejected("not_a_tag_read")
    epc = normalise_epc(fields["epc"])
    antenna = _antenna(fields.get("antenna"))
    rssi = _number(fields.get("rssi"), "bad_rssi")
    at = received
    if profile.time_source == "reader":
        at = _timestamp(fields.get("timestamp"), profile.timestamp_unit)
    return TagRead(epc, antenna, None if rssi is None else rssi * profile.rssi_scale, at)


def _antenna(value: Any) -> int | None:
    number = _number(value, "bad_antenna")
    if number is None:
        return None
    if not number.is_integer() or not 0 <= number <= 1024:
        raise Rejected("bad_antenna")
    return int(number)


def _number(value: Any, reason: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise Rejected(reason)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Rejected(reason) from None
    if not math.isfinite(number):
        raise Rejected(reason)
    return number


def _timestamp(value: Any, unit: str) -> datetime:
    try:
        if unit == "iso":
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        number = _number(value, "bad_timestamp")
        if number is None:
            raise Rejected("bad_timestamp")
        return datetime.fromtimestamp(number * _UNIT_SECONDS[unit], UTC)
    except (ValueError, OverflowError, OSError):
        raise Rejected("bad_timestamp") from None


def _first(record: dict[str, Any], paths: tuple[str, ...]) -> Any:
    for path in paths:
        value = _at(record, path)
        if value is not None:
            return value
    return None


def _at(document: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document
