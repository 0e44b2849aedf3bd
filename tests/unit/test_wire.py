"""The wire contract: topics, envelopes, and what the cloud refuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cloud.service_layer.message_batch import READING_COLUMNS, MessageBatch
from edge import wire
from edge.wire import Quality, WireError


def test_topics_round_trip_and_shared_subscription() -> None:
    name = wire.topic("wh-leeds", "wh-leeds-gw1", "readings")
    assert name == "cc/v1/wh-leeds/wh-leeds-gw1/readings"
    assert wire.parse_topic(name) == ("wh-leeds", "wh-leeds-gw1", "readings")
    assert wire.subscription("readings", shared=True) == "$share/ingest/cc/v1/+/+/readings"
    assert wire.subscription("status", shared=False) == "cc/v1/+/+/status"
    for bad in ("cc/v1/a/b", "cc/v2/a/b/readings", "cc/v1/a/b/cmd", "x/v1/a/b/readings"):
        with pytest.raises(wire.TopicError):
            wire.parse_topic(bad)


def test_assembled_envelope_decodes_to_the_same_readings() -> None:
    taken = datetime(2026, 11, 21, 10, 0, 0, 123000, tzinfo=UTC)
    bodies = [
        (10, wire.encode_reading_body("s1", "temperature", 4.5, "C", Quality.OK, taken)),
        (11, wire.encode_reading_body("s1", "humidity", None, "%RH", Quality.TIMEOUT, taken)),
    ]
    payload = wire.assemble_readings("gw1", "site1", bodies, sent_at=taken + timedelta(seconds=5))
    channel, envelope = wire.decode("cc/v1/site1/gw1/readings", payload)
    assert channel == "readings"
    assert [(r.seq, r.sensor, r.quantity, r.value, r.quality) for r in envelope.records] == [
        (10, "s1", "temperature", 4.5, Quality.OK),
        (11, "s1", "humidity", None, Quality.TIMEOUT),
    ]
    assert envelope.records[0].taken_at == taken
    assert envelope.sent_at == taken + timedelta(seconds=5)


def test_a_decoded_batch_holds_its_times_in_utc_at_the_same_instant() -> None:
    # a gateway may stamp local time; the batch keeps the instant in UTC's one tzinfo object
    # (the rollups and the rules compare and sort these times: see MessageBatch.add_envelope)
    stamped = datetime(2026, 11, 21, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    payload = (
        b'{"v":1,"gateway":"gw1","site":"site1","sent_at":"2026-11-21T10:31:00Z","records":['
        b'{"seq":1,"sensor":"s1","quantity":"temperature","value":4.5,"unit":"C",'
        b'"quality":"ok","taken_at":"2026-11-21T12:30:00+02:00"}]}'
    )
    _, envelope = wire.decode("cc/v1/site1/gw1/readings", payload)
    batch = MessageBatch()
    batch.add_envelope(envelope, datetime.now(UTC))  # type: ignore[arg-type]
    [row] = batch.readings
    taken = row[READING_COLUMNS.index("taken_at")]
    assert taken == stamped and taken.tzinfo is UTC


def test_time_on_the_wire_is_utc_with_milliseconds() -> None:
    local = datetime(2026, 6, 1, 12, 0, 0, 987654, tzinfo=UTC).astimezone()
    assert wire.utc_iso(local) == "2026-06-01T12:00:00.987Z"


def test_status_and_heartbeat_round_trip() -> None:
    now = datetime.now(UTC)
    beat = wire.Heartbeat(
        v=1,
        gateway="gw1",
        site="s1",
        at=now,
        buffer_depth=3,
        dropped_records=0,
        poll_errors={"probe": 2},
    )
    assert wire.decode("cc/v1/s1/gw1/heartbeat", wire.encode(beat))[1] == beat
    offline = wire.StatusMessage(v=1, gateway="gw1", site="s1", state="offline")
    assert wire.decode("cc/v1/s1/gw1/status", wire.encode(offline))[1] == offline


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'{"v": 7}', "unsupported schema version 7"),
        (b'{"gateway": "gw1"}', "unsupported schema version None"),
        (
            json.dumps(
                {
                    "v": 1,
                    "gateway": "gw1",
                    "site": "s1",
                    "sent_at": "2026-01-01T00:00:00Z",
                    "records": [],
                }
            ).encode(),
            "records: List should have at least 1 item",
        ),
        (
            json.dumps(
                {
                    "v": 1,
                    "gateway": "gw2",
                    "site": "s1",
                    "sent_at": "2026-01-01T00:00:00Z",
                    "records": [
                        {
                            "seq": 1,
                            "sensor": "a",
                            "quantity": "temperature",
                            "value": 1,
                            "unit": "C",
                            "quality": "ok",
                            "taken_at": "2026-01-01T00:00:00Z",
                        }
                    ],
                }
            ).encode(),
            "envelope says gateway 'gw2'",
        ),
        (
            json.dumps(
                {
                    "v": 1,
                    "gateway": "gw1",
                    "site": "s1",
                    "sent_at": "2026-01-01T00:00:00Z",
                    "records": [
                        {
                            "seq": -1,
                            "sensor": "a",
                            "quantity": "temperature",
                            "value": 1,
                            "unit": "C",
                            "quality": "great",
                            "taken_at": "2026-01-01T00:00:00Z",
                        }
                    ],
                }
            ).encode(),
            "records.0.seq: Input should be greater than or equal to 0",
        ),
    ],
)
def test_decode_refuses_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as caught:
        wire.decode("cc/v1/s1/gw1/readings", payload)
    assert reason in str(caught.value)


def test_broker_address() -> None:
    assert wire.BrokerAddress.parse("mqtt://10.0.0.5:8883") == wire.BrokerAddress("10.0.0.5", 8883)
    assert wire.BrokerAddress.parse("localhost:1883").port == 1883
    assert wire.BrokerAddress.parse("mqtts://10.0.0.5") == wire.BrokerAddress(
        "10.0.0.5", 8883, True
    )
    with pytest.raises(ValueError, match="not mqtt://host:port"):
        wire.BrokerAddress.parse("mqtt://:1883")


def test_a_time_without_an_offset_is_refused() -> None:
    """Ambiguous times would poison the store: they become dead letters at the door."""
    body = wire.encode_reading_body("s1", "temperature", 4.5, "C", Quality.OK, datetime.now(UTC))
    payload = wire.assemble_readings("gw1", "site1", [(1, body)]).replace(b'Z"', b'"')
    with pytest.raises(WireError, match="timezone"):
        wire.decode("cc/v1/site1/gw1/readings", payload)
