"""End to end: pymodbus sensors -> gateway -> broker -> ingest -> database, exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from cloud.adapters.engine import make_engine
from cloud.adapters.orm.readings import Gateway, Reading, Sensor
from tests.conftest import (
    gateway_args,
    ingest_args,
    make_gateway_config,
    start_ingest,
    wait_until,
)
from tests.integration.test_rollups import expected_rollups, stored_rollups

pytestmark = pytest.mark.integration


def readings_of(url: str, gateway: str) -> list[Reading]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Reading.__table__).where(Reading.gateway_id == gateway).order_by(Reading.seq)
        ).all()
    engine.dispose()
    return rows  # type: ignore[return-value]


def count_of(url: str, gateway: str) -> int:
    return len(readings_of(url, gateway))


def assert_exactly_once(rows: list[Reading], spans: list[tuple[int, int]], per_poll: int) -> None:
    """Every seq the gateway committed is there once; each poll's readings are all there."""
    seqs = [r.seq for r in rows]
    assert len(seqs) == len(set(seqs)), "a (gateway, seq) identity is stored twice"
    expected = set()
    for first, last in spans:
        expected |= set(range(first, last + 1))
    missing, unexpected = sorted(expected - set(seqs)), sorted(set(seqs) - expected)
    assert not missing and not unexpected, f"missing {missing[:10]}, unexpected {unexpected[:10]}"
    # Each device poll yields temperature and humidity with one timestamp: no half polls.
    per_sample = Counter((r.sensor_id, r.taken_at) for r in rows)
    assert set(per_sample.values()) == {per_poll}


def assert_taken_times(rows: list[Reading]) -> None:
    """Simulated sensors serve seconds-mod-100: a value dates the moment it was read."""
    good = [r for r in rows if r.quality == "ok"]
    assert good, "no good readings at all"
    for r in good:
        taken: datetime = r.taken_at
        expected = (taken.timestamp()) % 100.0
        drift = abs((r.value - expected + 50) % 100 - 50)
        assert drift < 0.6, (
            f"{r.sensor_id} {r.quantity} value {r.value} taken {taken}: {drift:.2f}s off"
        )
        assert r.received_at >= taken


@pytest.mark.parametrize("stack", ["mosquitto+postgresql", "amqtt+sqlite"])
def test_every_reading_arrives_exactly_once(
    stack: str, request: pytest.FixtureRequest, tmp_path: Path, clock_sensors, processes
) -> None:
    if stack == "mosquitto+postgresql":
        broker, url, embedded = (
            request.getfixturevalue("mosquitto"),
            request.getfixturevalue("pg_url"),
            False,
        )
    else:
        broker, url, embedded = (
            request.getfixturevalue("amqtt"),
            request.getfixturevalue("sqlite_url"),
            True,
        )
    gateways = [make_gateway_config(tmp_path, sensors=3) for _ in range(2)]
    for gw in gateways:
        clock_sensors(gw)
    ingest = start_ingest(
        processes, "ingest", ingest_args(url, broker, embedded=embedded, shared=not embedded)
    )
    runs = [processes(f"gateway-{gw.id}", *gateway_args(gw, broker)) for gw in gateways]

    wait_until(lambda: all(count_of(url, gw.id) >= 60 for gw in gateways), 60, "readings to arrive")
    for run in runs:
        assert run.terminate() == 0
    for gw, run in zip(gateways, runs, strict=True):
        spans = run.taken_spans()
        assert spans, run.text()
        total = sum(last - first + 1 for first, last in spans)
        wait_until(
            lambda gw=gw, total=total: count_of(url, gw.id) == total, 30, f"{gw.id} to drain"
        )
        rows = readings_of(url, gw.id)
        assert_exactly_once(rows, spans, per_poll=2)
        assert_taken_times(rows)
    assert ingest.alive()
    assert stored_rollups(url) == expected_rollups(url)  # hourly rollups kept in step

    engine = make_engine(url)
    with engine.connect() as conn:
        states = dict(conn.execute(select(Gateway.id, Gateway.state)).all())
        sensors = conn.execute(select(Sensor.id)).scalars().all()
    engine.dispose()
    for gw in gateways:
        assert states[gw.id] == "offline"  # the clean stop published it
    assert len([s for s in sensors if any(s.startswith(gw.site) for gw in gateways)]) == 6
