"""The wire is strict: what is not exactly a number, a time or a sequence number is refused
with the field named; what is not a finite number never becomes one."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from edge import wire
from edge.wire import Quality, WireError

TOPIC = "cc/v1/site1/gw1/readings"
GOOD = {
    "seq": 1,
    "sensor": "s1",
    "quantity": "temperature",
    "value": 4.5,
    "unit": "C",
    "quality": "ok",
    "taken_at": "2026-11-21T10:00:00.000Z",
}


def envelope(**changes: object) -> bytes:
    """An envelope of one reading, with raw JSON text put in for some of its fields."""
    record = json.dumps({**GOOD, **{k: f"@{k}@" for k in changes}})
    for key, raw in changes.items():
        record = record.replace(f'"@{key}@"', str(raw))
    return (
        '{"v":1,"gateway":"gw1","site":"site1","sent_at":"2026-11-21T10:00:01Z","records":['
        + record
        + "]}"
    ).encode()


def test_a_good_reading_decodes() -> None:
    _, message = wire.decode(TOPIC, envelope())
    assert isinstance(message, wire.ReadingsEnvelope)
    assert message.records[0].value == 4.5


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("value", "true", "records.0.value"),
        ("value", '"7.5"', "records.0.value"),
        ("taken_at", "1700000000", "records.0.taken_at"),
        ("taken_at", "1.7e9", "records.0.taken_at"),
        ("taken_at", '"1700000000"', "records.0.taken_at"),
        ("taken_at", '"2026-11-21"', "records.0.taken_at"),
        ("taken_at", '"2026-11-21 10:00:00Z"', "records.0.taken_at"),
        ("seq", str(2**63), "records.0.seq"),
        ("seq", str(2**64 + 5), "records.0.seq"),
        ("seq", "true", "records.0.seq"),
        ("seq", "1.0", "records.0.seq"),
        ("unit", '"C\\u0000"', "records.0.unit"),
        ("sensor", '"s\\u00001"', "records.0.sensor"),
    ],
    ids=[
        "bool-value",
        "string-value",
        "epoch-int",
        "epoch-float",
        "epoch-string",
        "date-only",
        "space-for-T",
        "seq-2^63",
        "seq-past-2^64",
        "bool-seq",
        "float-seq",
        "nul-unit",
        "nul-sensor",
    ],
)
def test_the_wire_refuses_lax_types_naming_the_field(field: str, raw: str, expected: str) -> None:
    with pytest.raises(WireError) as refused:
        wire.decode(TOPIC, envelope(**{field: raw}))
    assert expected in str(refused.value), refused.value


def test_the_largest_bigint_is_a_sequence_number() -> None:
    _, message = wire.decode(TOPIC, envelope(seq=str(2**63 - 1)))
    assert isinstance(message, wire.ReadingsEnvelope)
    assert message.records[0].seq == 2**63 - 1


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_value_is_no_number_but_a_flag(token: str) -> None:
    assert not math.isfinite(json.loads(token))  # Python's json takes these tokens
    _, message = wire.decode(TOPIC, envelope(value=token))
    assert isinstance(message, wire.ReadingsEnvelope)
    [reading] = message.records
    assert reading.value is None
    assert reading.quality is Quality.INVALID_VALUE


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_the_gateway_never_sends_a_non_finite_value(value: float) -> None:
    taken = datetime(2026, 11, 21, 10, tzinfo=UTC)
    body = wire.encode_reading_body("s1", "temperature", value, "C", Quality.OK, taken)
    payload = wire.assemble_readings("gw1", "site1", [(1, body)], sent_at=taken)
    assert b"NaN" not in payload and b"Infinity" not in payload
    json.loads(payload, parse_constant=lambda c: pytest.fail(f"{c} on the wire"))
    _, message = wire.decode(TOPIC, payload)
    assert isinstance(message, wire.ReadingsEnvelope)
    assert (message.records[0].value, message.records[0].quality) == (
        None,
        Quality.INVALID_VALUE,
    )


@pytest.mark.parametrize("stamp", ["1970-01-01T00:00:05Z", "9999-12-31T23:59:59Z"])
def test_far_times_are_valid_on_the_wire_and_left_to_the_cloud(stamp: str) -> None:
    # RFC 3339 allows them; the cloud quarantines them (cloud.domain.plausibility)
    _, message = wire.decode(TOPIC, envelope(taken_at=f'"{stamp}"'))
    assert isinstance(message, wire.ReadingsEnvelope)
    assert message.records[0].taken_at.year in (1970, 9999)


def test_a_heartbeat_with_a_string_for_a_number_is_refused() -> None:
    beat = {
        "v": 1,
        "gateway": "gw1",
        "site": "site1",
        "at": "2026-11-21T10:00:00Z",
        "buffer_depth": "3",
        "dropped_records": 0,
        "clock_synchronised": "false",
    }
    with pytest.raises(WireError) as refused:
        wire.decode("cc/v1/site1/gw1/heartbeat", json.dumps(beat).encode())
    assert "buffer_depth" in str(refused.value)
    assert "clock_synchronised" in str(refused.value)
