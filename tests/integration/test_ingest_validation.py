"""Bad data cannot silence the rules: through the real Mosquitto and ingest worker on
PostgreSQL, a non-finite value is a flag, an implausible time is quarantined, a reused seq
with other content is a dead letter (decision 0021)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.quality import Excursion, Hold
from cloud.adapters.orm.readings import DeadLetter, ImplausibleReading, LatestReading, Reading
from edge import wire
from tests.conftest import ingest_args, start_ingest, wait_until
from tests.integration.test_rules import Plant, at
from tests.integration.test_rules_pipeline import SITE_OF, Publisher, count

pytestmark = pytest.mark.integration


@pytest.fixture
def plant(pg_url: str) -> Iterator[Plant]:
    p = Plant(pg_url, tag=f"-{uuid.uuid4().hex[:6]}")
    try:
        yield p
    finally:
        p.engine.dispose()


def raw(plant: Plant, zone: str, rows: list[tuple], **replace: str) -> bytes:
    """An envelope of `rows`, with raw JSON text (Infinity, a far time) swapped in."""
    gateway = plant.sensor_of[zone][0]
    bodies = [
        (seq, wire.encode_reading_body(sensor, q, v, unit, wire.Quality(quality), taken))
        for _gw, seq, sensor, q, v, unit, quality, taken, _received in rows
    ]
    payload = wire.assemble_readings(gateway, SITE_OF[zone], bodies, datetime.now(UTC)).decode()
    for old, new in replace.items():
        payload = payload.replace(old, new)
    return payload.encode()


def publish(publisher: Publisher, plant: Plant, zone: str, payload: bytes) -> None:
    gateway = plant.sensor_of[zone][0]
    info = publisher.client.publish(wire.topic(SITE_OF[zone], gateway, "readings"), payload, qos=1)
    info.wait_for_publish(10)


def test_bad_data_cannot_silence_the_rules(
    plant: Plant,
    pg_url: str,
    mosquitto: tuple[str, int],
    processes: Callable[..., object],
) -> None:
    publisher = Publisher(mosquitto)
    try:
        start_ingest(processes, "ingest", ingest_args(pg_url, mosquitto, shared=True))
        # published back to back: one batch, as a rule (the worker lingers for more)
        a_rows = plant.readings("a-cold", 0, [1234.5])
        publish(publisher, plant, "a-cold", raw(plant, "a-cold", a_rows, **{"1234.5": "Infinity"}))
        b_rows = plant.readings("b-cold", 600, [5.0] * 5 + [15.0] * 40 + [5.0] * 5)
        publish(publisher, plant, "b-cold", raw(plant, "b-cold", b_rows))

        opened = select(func.count(Excursion.id)).where(Excursion.zone_id == "b-cold")
        wait_until(lambda: count(plant, opened) >= 1, 60, "gateway B's excursion")
        wait_until(lambda: count(plant, select(func.count(Hold.id))) >= 1, 30, "B's hold")
        with plant.session() as s:
            gw_a = plant.sensor_of["a-cold"][0]
            a = s.execute(
                select(Reading.value, Reading.quality).where(Reading.gateway_id == gw_a)
            ).one()
            assert tuple(a) == (None, "invalid_value")
            excursion = s.scalars(select(Excursion).where(Excursion.zone_id == "b-cold")).first()
            assert excursion is not None and excursion.started_at == at(605)
            alerted = {(x.subject_kind, x.subject_id) for x in s.scalars(select(Alert))}
            assert ("excursion", str(excursion.id)) in alerted

        # Ongoing: 13 C from 650 on; then a reading stamped 9999 must neither close it nor
        # become the latest; one stamped 1970 is kept apart too.
        ongoing = plant.readings("b-cold", 650, [13.0] * 45)
        publish(publisher, plant, "b-cold", raw(plant, "b-cold", ongoing))
        still = select(func.count(Excursion.id)).where(
            Excursion.zone_id == "b-cold",
            Excursion.started_at >= at(650),
            Excursion.ended_at.is_(None),
        )
        wait_until(lambda: count(plant, still) >= 1, 60, "the ongoing 13 C excursion")
        future = plant.readings("b-cold", 695, [5.0])
        stamp = wire.utc_iso(at(695))
        publish(
            publisher,
            plant,
            "b-cold",
            raw(plant, "b-cold", future, **{stamp: "9999-12-31T23:59:59.000Z"}),
        )
        past = plant.readings("b-cold", 696, [5.0])
        stamp = wire.utc_iso(at(696))
        publish(
            publisher,
            plant,
            "b-cold",
            raw(plant, "b-cold", past, **{stamp: "1970-01-01T00:00:05.000Z"}),
        )
        quarantined = select(func.count()).select_from(ImplausibleReading)
        wait_until(lambda: count(plant, quarantined) == 2, 30, "both far readings quarantined")
        with plant.session() as s:
            reasons = s.scalars(select(ImplausibleReading.reason)).all()
            assert any("in the future" in r for r in reasons), reasons
            assert any("earliest plausible" in r for r in reasons), reasons
            # still open: the reading stamped 9999 closed nothing
            assert s.scalar(still) >= 1
            latest = s.scalars(select(LatestReading)).all()
            assert all(x.taken_at.year < 9999 for x in latest)
            assert s.scalar(select(func.max(Reading.taken_at))) < datetime(2100, 1, 1, tzinfo=UTC)
            assert s.scalar(select(func.min(Reading.taken_at))) > datetime(2020, 1, 1, tzinfo=UTC)
            gaps = select(func.count(Excursion.id)).where(Excursion.kind == "unknown_conditions")
            assert s.scalar(gaps) == 0

        # A seq reused with other content: a dead letter; the stored reading stays.
        first = ongoing[0]
        changed = raw(plant, "b-cold", [first], **{'"value":13.0': '"value":4.0'})
        publish(publisher, plant, "b-cold", changed)
        publish(publisher, plant, "b-cold", raw(plant, "b-cold", [first]))  # identical: silent
        letters = select(DeadLetter.reason, DeadLetter.payload)
        wait_until(
            lambda: any("conflicting duplicate" in r for r, _ in plant_rows(plant, letters)),
            30,
            "the conflicting duplicate's dead letter",
        )
        time.sleep(1.0)  # the identical replay, had it been dead-lettered, would be by now
        rows = plant_rows(plant, letters)
        assert [r for r, _ in rows if "conflicting duplicate" in r] == [
            f"conflicting duplicate: seq {first[1]} of gateway {first[0]} is stored with other "
            "content; the stored reading stays"
        ]
        [letter] = [p for r, p in rows if "conflicting duplicate" in r]
        assert json.loads(letter)["value"] == 4.0
        with plant.session() as s:
            stored = s.execute(
                select(Reading.value).where(Reading.gateway_id == first[0], Reading.seq == first[1])
            ).scalar_one()
            assert stored == 13.0
    finally:
        publisher.close()


def plant_rows(plant: Plant, query: object) -> list[tuple]:
    with plant.session() as s:
        return [tuple(r) for r in s.execute(query).all()]  # type: ignore[call-overload]


def test_the_time_window_is_an_option_of_the_ingest_command(
    plant: Plant,
    pg_url: str,
    mosquitto: tuple[str, int],
    processes: Callable[..., object],
) -> None:
    """`--future-skew` and `--earliest-plausible` move the window: a reading an hour ahead is
    kept with a two-hour skew, one from 2020 is quarantined once 2021 is the earliest date."""
    publisher = Publisher(mosquitto)
    args = (*ingest_args(pg_url, mosquitto, shared=True), "--future-skew", "7200")
    try:
        start_ingest(processes, "ingest", (*args, "--earliest-plausible", "2021-01-01"))
        ahead, old = plant.readings("a-cold", 0, [5.0, 5.5])
        soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        for row, when in ((ahead, soon), (old, datetime(2020, 6, 1, tzinfo=UTC))):
            stamp = {wire.utc_iso(row[7]): wire.utc_iso(when)}
            publish(publisher, plant, "a-cold", raw(plant, "a-cold", [row], **stamp))
        gateway = plant.sensor_of["a-cold"][0]
        kept = select(Reading.taken_at).where(Reading.gateway_id == gateway)
        wait_until(lambda: len(plant_rows(plant, kept)) == 1, 30, "the reading an hour ahead")
        apart = select(ImplausibleReading.reason)
        wait_until(lambda: len(plant_rows(plant, apart)) == 1, 30, "the 2020 reading set apart")
        assert plant_rows(plant, kept) == [(soon,)]
        [(reason,)] = plant_rows(plant, apart)
        assert "2021-01-01" in reason, reason
    finally:
        publisher.close()
