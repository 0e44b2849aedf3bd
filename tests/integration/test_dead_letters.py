"""Bad messages land in the dead-letter table with their reason; the worker keeps going."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from cloud.adapters.engine import make_engine
from cloud.adapters.orm.readings import DeadLetter, Reading
from edge import wire
from edge.wire import Quality
from tests.conftest import ingest_args, start_ingest, wait_until

pytestmark = pytest.mark.integration


def envelope(gateway: str, site: str, seq: int, version: int = 1) -> bytes:
    body = wire.encode_reading_body(
        "probe-1", "temperature", 5.5, "C", Quality.OK, datetime.now(UTC)
    )
    payload = json.loads(wire.assemble_readings(gateway, site, [(seq, body)]))
    payload["v"] = version
    return json.dumps(payload).encode()


def test_bad_messages_are_dead_lettered_and_ingest_continues(mosquitto, pg_url, processes) -> None:
    worker = start_ingest(processes, "ingest", ingest_args(pg_url, mosquitto))
    tag = uuid.uuid4().hex[:8]
    site, gateway = f"site-{tag}", f"gw-{tag}"
    topic = wire.topic(site, gateway, "readings")
    bad = {
        "not json": (topic, b"{this is not json"),
        "topic mismatch": (topic, envelope(f"gw-other-{tag}", site, 1)),
        "unknown version": (topic, envelope(gateway, site, 2, version=99)),
        "missing field": (topic, json.dumps({"v": 1, "gateway": gateway, "site": site}).encode()),
    }
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{tag}")
    client.connect(*mosquitto)
    client.loop_start()
    for name, (where, payload) in bad.items():
        client.publish(where, payload, qos=1).wait_for_publish(5)
        assert name
    client.publish(topic, envelope(gateway, site, 42), qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()

    engine = make_engine(pg_url)

    def stored() -> list[int]:
        with engine.connect() as conn:
            return (
                conn.execute(select(Reading.seq).where(Reading.gateway_id == gateway))
                .scalars()
                .all()
            )

    assert wait_until(stored, 20, "the good envelope after the bad ones") == [42]
    with engine.connect() as conn:
        letters = conn.execute(
            select(DeadLetter.reason, DeadLetter.payload).where(DeadLetter.topic == topic)
        ).all()
    engine.dispose()
    reasons = sorted(r for r, _ in letters)
    assert len(letters) == 4, reasons
    assert any("not JSON" in r for r in reasons)
    assert any(f"gw-other-{tag}" in r and "published on" in r for r in reasons)
    assert any("unsupported schema version 99" in r for r in reasons)
    assert any("records: Field required" in r for r in reasons)
    assert {p for _, p in letters} >= {b"{this is not json"}
    assert worker.alive()


def test_a_message_the_database_refuses_does_not_block_the_batch(
    mosquitto, pg_url, processes
) -> None:
    worker = start_ingest(processes, "ingest", ingest_args(pg_url, mosquitto))
    tag = uuid.uuid4().hex[:8]
    site, gateway = f"site-{tag}", f"gw-{tag}"
    # Valid on the wire, refused by the schema: a sensor model longer than its column.
    status = wire.StatusMessage(
        v=1,
        gateway=gateway,
        site=site,
        state="online",
        at=datetime.now(UTC),
        zones=[wire.ZoneInfo(id=f"zone-{tag}", name="Cold room")],
        sensors=[
            wire.SensorInfo(
                id=f"s-{tag}", zone=f"zone-{tag}", model="X" * 101, quantities=["temperature"]
            )
        ],
    )
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{tag}")
    client.connect(*mosquitto)
    client.loop_start()
    client.publish(wire.topic(site, gateway, "status"), wire.encode(status), qos=1)
    client.publish(wire.topic(site, gateway, "readings"), envelope(gateway, site, 7), qos=1)
    client.publish(wire.topic(site, gateway, "status"), b"", qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()

    engine = make_engine(pg_url)

    def refused() -> list[str]:
        with engine.connect() as conn:
            return (
                conn.execute(
                    select(DeadLetter.reason).where(DeadLetter.topic.like(f"%{gateway}/status"))
                )
                .scalars()
                .all()
            )

    (reason,) = wait_until(refused, 20, "the refused status to be dead-lettered")
    assert "refused by the database" in reason and "too long" in reason, reason
    with engine.connect() as conn:
        seqs = conn.execute(select(Reading.seq).where(Reading.gateway_id == gateway)).scalars()
        assert list(seqs) == [7]
    engine.dispose()
    assert worker.alive()
