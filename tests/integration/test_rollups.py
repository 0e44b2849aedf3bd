"""Hourly rollups kept by Store.write equal an aggregate of the stored readings, whatever the
order, lateness or duplication of the batches; the migration rolls up what was there before."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy import insert, select

from cloud.adapters.engine import make_engine
from cloud.adapters.migrate import upgrade
from cloud.adapters.orm.readings import LatestReading, Reading, ReadingRollup
from cloud.service_layer.message_batch import MessageBatch
from cloud.service_layer.store import Store
from tests.conftest import PG_ADMIN

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
SENSORS = ("wh1-s1", "wh1-s2", "truck7-s1")
QUANTITIES = (("temperature", "C"), ("humidity", "%RH"))


def readings(gateway: str, count: int, seed: int) -> list[tuple]:
    """Readings over five hours, values on a 0.5 grid (ties for min and max), some bad."""
    rng = random.Random(seed)
    rows = []
    for seq in range(1, count + 1):
        sensor = rng.choice(SENSORS)
        quantity, unit = rng.choice(QUANTITIES)
        taken = START + timedelta(
            seconds=rng.randrange(5 * 3600), microseconds=rng.randrange(10**6)
        )
        roll = rng.random()
        if roll < 0.05:
            value, quality = None, "timeout"
        elif roll < 0.08:
            value, quality = 85.0, "out_of_range"  # has a value, must not count into max
        else:
            value, quality = rng.randrange(-10, 20) / 2, "ok"
        rows.append((gateway, seq, sensor, quantity, value, unit, quality, taken, taken))
    return rows


def deliveries(rows: list[tuple], seed: int) -> list[list[tuple]]:
    """Batches as ingest would see them: shuffled, a late hour, replays and partial overlaps."""
    rng = random.Random(seed)
    late = [r for r in rows if r[7] < START + timedelta(hours=1)]  # the first hour comes last
    prompt = [r for r in rows if r[7] >= START + timedelta(hours=1)]
    rng.shuffle(prompt)
    batches = [prompt[i : i + 37] for i in range(0, len(prompt), 37)]
    batches.append(late)
    replays = [list(b) for b in rng.sample(batches, 6)]  # the broker redelivers whole messages
    overlap = rng.sample(rows, 40) + rng.sample(late, 5)  # and a gateway re-sends some records
    batches[3:3] = replays[:3]
    batches += [*replays[3:], overlap]
    return batches


def expected_rollups(url: str) -> dict[tuple, dict]:
    """Each (sensor, quantity, hour) computed plainly from the readings table."""
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(select(Reading.__table__)).all()
    engine.dispose()
    groups: dict[tuple, list] = defaultdict(list)
    for r in stored:
        groups[
            (r.sensor_id, r.quantity, r.taken_at.replace(minute=0, second=0, microsecond=0))
        ].append(r)
    result = {}
    for key, members in groups.items():
        good = [r for r in members if r.quality == "ok" and r.value is not None]
        lo = min((r.value for r in good), default=None)
        hi = max((r.value for r in good), default=None)
        result[key] = {
            "n": len(good),
            "sum": sum(r.value for r in good),
            "min": lo,
            "max": hi,
            "min_at": min((r.taken_at for r in good if r.value == lo), default=None),
            "max_at": min((r.taken_at for r in good if r.value == hi), default=None),
            "bad": len(members) - len(good),
        }
    return result


def stored_rollups(url: str) -> dict[tuple, dict]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(ReadingRollup.__table__)).all()
    engine.dispose()
    return {
        (r.sensor_id, r.quantity, r.bucket_start): {
            "n": r.n,
            "sum": pytest.approx(r.sum),
            "min": r.min,
            "max": r.max,
            "min_at": r.min_at,
            "max_at": r.max_at,
            "bad": r.bad,
        }
        for r in rows
    }


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")


def test_rollups_equal_the_readings_after_replays_and_late_data(url: str) -> None:
    rows = readings("gw-roll", 1500, seed=7)
    store = Store(make_engine(url))
    for delivered in deliveries(rows, seed=11):
        batch = MessageBatch()
        batch.readings = delivered
        batch.seen["gw-roll"] = ("wh1", START)
        store.write(batch)
    store.engine.dispose()

    expected = expected_rollups(url)
    assert sum(g["n"] + g["bad"] for g in expected.values()) == len(rows)  # all stored, once
    assert len(expected) == len(SENSORS) * len(QUANTITIES) * 5
    assert stored_rollups(url) == expected
    # and the live overview's latest reading is the newest taken, the late hour notwithstanding
    newest = {}
    for r in sorted(rows, key=lambda r: (r[7], -r[1]), reverse=True):
        newest.setdefault((r[2], r[3]), (r[4], r[6], r[7]))
    engine = make_engine(url)
    with engine.connect() as conn:
        latest = conn.execute(select(LatestReading.__table__)).all()
    engine.dispose()
    assert {(r.sensor_id, r.quantity): (r.value, r.quality, r.taken_at) for r in latest} == newest


def test_a_bucket_of_only_bad_readings_has_no_extremes(url: str) -> None:
    at = START + timedelta(minutes=5)
    batch = MessageBatch()
    batch.readings = [
        ("gw-bad", 1, "s1", "temperature", None, "C", "timeout", at, at),
        ("gw-bad", 2, "s1", "temperature", None, "C", "modbus_exception", at, at),
    ]
    store = Store(make_engine(url))
    store.write(batch)
    later = MessageBatch()  # a good value later in the same hour takes min and max
    ist = timezone(timedelta(hours=5, minutes=30))  # a gateway stamping local time, offset
    later.readings = [("gw-bad", 3, "s1", "temperature", 4.5, "C", "ok", at.astimezone(ist), at)]
    store.write(later)
    store.engine.dispose()
    assert stored_rollups(url) == {
        ("s1", "temperature", START): {
            "n": 1,
            "sum": pytest.approx(4.5),
            "min": 4.5,
            "max": 4.5,
            "min_at": at,
            "max_at": at,
            "bad": 2,
        }
    }


# --- the migration rolls up readings stored before it ---------------------------------------


@pytest.fixture(params=["postgresql", "sqlite"])
def url_before_rollups(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database migrated only up to the revision before reading_rollups."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'before.sqlite'}"
        upgrade(url, "0005_api_tokens")
        yield url
        return
    name = f"coldchain_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        try:
            upgrade(url, "0005_api_tokens")
            yield url
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migration_rolls_up_readings_already_stored(url_before_rollups: str) -> None:
    url = url_before_rollups
    rows = readings("gw-old", 600, seed=3)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            insert(Reading.__table__),
            [dict(zip([c.name for c in Reading.__table__.c], r, strict=True)) for r in rows],
        )
    engine.dispose()

    upgrade(url, "0006_readings_rollups")

    expected = expected_rollups(url)
    assert len(expected) == len(SENSORS) * len(QUANTITIES) * 5
    assert stored_rollups(url) == expected
