"""End to end: readings published to the real Mosquitto, stored by the real ingest worker
process on PostgreSQL, which runs the rules after each commit: excursion, exposures and
holds committed; a truck's backlog arriving late raises what it would have raised live."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from cloud.adapters.engine import make_engine
from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.quality import Excursion, Exposure, Hold
from cloud.adapters.orm.readings import Reading, Sensor, Zone
from cloud.adapters.orm.traceability import Batch
from cloud.entrypoints.ingest import IngestWorker
from cloud.entrypoints.rules_runner import RulesReport
from cloud.service_layer import rules
from cloud.service_layer.message_batch import MessageBatch
from cloud.service_layer.store import Store, WriteResult
from edge import wire
from tests.conftest import ingest_args, start_ingest, wait_until
from tests.integration.test_rules import ZONES, Plant, at

pytestmark = pytest.mark.integration
SITE_OF = {zone: site for site, _, _, zone, _, _ in ZONES}


@pytest.fixture
def plant(pg_url: str) -> Iterator[Plant]:
    p = Plant(pg_url, tag=f"-{uuid.uuid4().hex[:6]}")  # gateways of this test only
    try:
        yield p
    finally:
        p.engine.dispose()


class Publisher:
    """A gateway's publishing side reduced to paho: envelopes of readings at QoS 1."""

    def __init__(self, broker: tuple[str, int]):
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"rules-{uuid.uuid4()}")
        self.client.connect(*broker)
        self.client.loop_start()

    def send(self, plant: Plant, zone: str, rows: list[tuple]) -> None:
        gateway = plant.sensor_of[zone][0]
        records = [
            (
                seq,
                wire.encode_reading_body(sensor, q, v, unit, wire.Quality(quality), taken),
            )
            for _gw, seq, sensor, q, v, unit, quality, taken, _received in rows
        ]
        payload = wire.assemble_readings(gateway, SITE_OF[zone], records, datetime.now(UTC))
        info = self.client.publish(wire.topic(SITE_OF[zone], gateway, "readings"), payload, qos=1)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def count(plant: Plant, query: object) -> int:
    with plant.session() as s:
        return int(s.scalar(query) or 0)


def test_readings_through_mosquitto_and_ingest_raise_exposures_and_holds(
    plant: Plant,
    pg_url: str,
    mosquitto: tuple[str, int],
    processes: Callable[..., object],
) -> None:
    start_ingest(processes, "ingest", ingest_args(pg_url, mosquitto, shared=True))
    publisher = Publisher(mosquitto)
    try:
        # Live, in the warehouse: one envelope a "minute" worth of readings at a time.
        live = plant.readings("a-cold", 0, [5.0] * 10 + [11.0] * 70 + [5.0] * 5)
        for i in range(0, len(live), 10):
            publisher.send(plant, "a-cold", live[i : i + 10])
        alarm = select(func.count(Excursion.id)).where(
            Excursion.zone_id == "a-cold",
            Excursion.rule == "alarm high > 8 for 60 min",
            Excursion.state == "closed",
        )
        wait_until(lambda: count(plant, alarm) == 1, 60, "the alarm excursion to be committed")
        with plant.session() as s:
            excursion = s.scalars(
                select(Excursion).where(Excursion.rule == "alarm high > 8 for 60 min")
            ).one()
            assert (excursion.started_at, excursion.ended_at) == (at(10), at(80))
            exposures = s.scalars(select(Exposure).where(Exposure.excursion_id == excursion.id))
            assert {(x.batch_id, x.minutes) for x in exposures} == {
                (plant.sensitive.id, 70.0),
                (plant.robust.id, 70.0),
            }
            assert {h.batch_id for h in s.scalars(select(Hold))} == {
                plant.sensitive.id,
                plant.robust.id,
            }
            assert s.get(Batch, plant.robust.id).status == "held"
            # ingest raised the alerts in the same transaction, without waiting for a tick
            alerted = {(a.subject_kind, a.subject_id) for a in s.scalars(select(Alert))}
            assert ("excursion", str(excursion.id)) in alerted
            assert {("hold", str(h.id)) for h in s.scalars(select(Hold))} <= alerted
            # named by lot and site (the worker's kept lots and sites, no look-ups)
            hold_alerts = s.scalars(select(Alert).where(Alert.subject_kind == "hold"))
            assert {a.title.split(":")[0] for a in hold_alerts} == {
                "Batch INS1 on hold",
                "Batch SAL1 on hold",
            }
            named = select(Alert).where(
                Alert.subject_kind == "excursion", Alert.subject_id == str(excursion.id)
            )
            assert s.scalars(named).one().site_id == s.get(Zone, excursion.zone_id).site_id

        # The truck was offline; a day later its backlog arrives, newest envelopes first.
        backlog = plant.readings("t7-reefer", 300, [5.0] * 40 + [-0.8] * 30 + [5.0] * 30)
        for i in reversed(range(0, len(backlog), 25)):
            publisher.send(plant, "t7-reefer", backlog[i : i + 25])
        freezing = select(func.count(Excursion.id)).where(
            Excursion.zone_id == "t7-reefer",
            Excursion.kind == "freezing",
            Excursion.suppressed_reason.is_(None),
        )
        wait_until(lambda: count(plant, freezing) == 1, 60, "the truck's freezing excursion")
        warning = select(func.count(Excursion.id)).where(
            Excursion.zone_id == "t7-reefer",
            Excursion.rule == "warning low < 2 for 10 min",
            Excursion.suppressed_reason.is_(None),
        )
        wait_until(lambda: count(plant, warning) == 1, 30, "the truck's low excursion")
        with plant.session() as s:
            live_like = {
                e.rule: (e.started_at, e.ended_at)
                for e in rules.zone_excursions(s, "t7-reefer", at(0), at(1000))
                if e.suppressed_reason is None
            }
            assert live_like["alarm freezing <= 0"] == (at(340), at(370))
            assert live_like["warning low < 2 for 10 min"] == (at(340), at(370))
            assert "alarm low < 2 for 60 min" not in live_like  # 30 minutes: under its delay
            truck = [
                x
                for x, e in rules.batch_exposures(s, plant.sensitive.id)
                # newest envelopes first: an excursion seen before the older readings came may
                # be withdrawn (recorded with its exposures); the one that stands is what counts
                if e.zone_id == "t7-reefer" and e.kind == "freezing" and e.suppressed_reason is None
            ]
            assert [x.minutes for x in truck] == [30.0]
            assert truck[0].min_value == -0.8
    finally:
        publisher.close()


def _worker(
    plant: Plant,
    broker: tuple[str, int],
    client_id: str,
    rules_on: bool,
    process: bool = False,
    store: Store | None = None,
) -> IngestWorker:
    worker = IngestWorker(
        store or plant.store, *broker, client_id=client_id, shared=False, rules_process=process
    )
    worker.rules = rules_on
    worker.start()
    assert worker.connected.wait(10), "the ingest worker did not connect"
    time.sleep(0.3)  # the SUBSCRIBE follows the CONNACK
    return worker


def _stored(plant: Plant, gateway: str) -> int:
    return count(
        plant, select(func.count()).select_from(Reading).where(Reading.gateway_id == gateway)
    )


@pytest.mark.parametrize("process", [False, True], ids=["rules-thread", "rules-process"])
def test_a_restarted_worker_evaluates_what_was_committed_but_not_evaluated(
    plant: Plant, mosquitto: tuple[str, int], process: bool
) -> None:
    client_id = f"ingest-catch-up-{uuid.uuid4().hex[:8]}"
    gateway = plant.sensor_of["a-cold"][0]
    publisher = Publisher(mosquitto)
    try:
        first = _worker(plant, mosquitto, client_id, rules_on=True, process=process)
        publisher.send(plant, "a-cold", plant.readings("a-cold", 0, [5.0] * 10))
        with plant.session() as s:
            wait_until(lambda: rules.progress(s, client_id) is not None, 30, "the rules mark")
        first.stop()
        # The process that committed the next readings died before its rules ran them (here:
        # a worker with the rules off commits them).
        blind = _worker(plant, mosquitto, client_id, rules_on=False)
        hot = plant.readings("a-cold", 10, [11.0] * 70 + [5.0] * 5)
        for i in range(0, len(hot), 15):
            publisher.send(plant, "a-cold", hot[i : i + 15])
        wait_until(lambda: _stored(plant, gateway) == 85, 30, "the readings to be committed")
        blind.stop()
        assert count(plant, select(func.count(Excursion.id))) == 0
        with plant.session() as s:
            mark = rules.progress(s, client_id)
        # Restarted with the rules on: it catches up before anything new arrives.
        restarted = _worker(plant, mosquitto, client_id, rules_on=True, process=process)
        try:
            assert restarted.caught_up.wait(30), "the catch-up did not finish"
            with plant.session() as s:
                excursion = s.scalars(
                    select(Excursion).where(Excursion.rule == "alarm high > 8 for 60 min")
                ).one()
                assert (excursion.started_at, excursion.ended_at) == (at(10), at(80))
                exposed = s.scalars(select(Exposure).where(Exposure.excursion_id == excursion.id))
                assert {x.batch_id for x in exposed} == {plant.sensitive.id, plant.robust.id}
                assert {h.batch_id for h in s.scalars(select(Hold))} == {
                    plant.sensitive.id,
                    plant.robust.id,
                }
                newest = s.scalar(select(func.max(Reading.received_at)))
                assert mark is not None and newest is not None
                assert rules.progress(s, client_id) == newest > mark
        finally:
            restarted.stop()
    finally:
        publisher.close()


@pytest.mark.parametrize("process", [False, True], ids=["rules-thread", "rules-process"])
def test_stopping_drains_the_rules_queue(
    plant: Plant, mosquitto: tuple[str, int], process: bool
) -> None:
    client_id = f"ingest-drain-{uuid.uuid4().hex[:8]}"
    gateway = plant.sensor_of["b-cold"][0]
    publisher = Publisher(mosquitto)
    outcomes: list[RulesReport] = []
    worker = _worker(plant, mosquitto, client_id, rules_on=True, process=process)
    worker.on_rules = outcomes.append
    try:
        rows = plant.readings("b-cold", 600, [5.0] * 20 + [13.0] * 40 + [5.0] * 5)
        for i in range(0, len(rows), 5):
            publisher.send(plant, "b-cold", rows[i : i + 5])
        wait_until(lambda: _stored(plant, gateway) == len(rows), 30, "the readings to be stored")
    finally:
        worker.stop()  # at once: what was committed is still evaluated before it returns
        publisher.close()
    with plant.session() as s:
        assert rules.progress(s, client_id) == s.scalar(select(func.max(Reading.received_at)))
        rules_seen = {
            e.rule for e in s.scalars(select(Excursion).where(Excursion.zone_id == "b-cold"))
        }
    assert "alarm high > 12 for 15 min" in rules_seen
    assert sum(len(o.opened) for o in outcomes) == len(rules_seen)
    assert sum(o.readings for o in outcomes) == worker.evaluated == len(rows)


class HeldStore(Store):
    """The real store, whose writes wait for `release` (and the first one may be refused, as
    the database refuses a batch holding a reading its schema does not accept)."""

    def __init__(self, engine: Any, refuse_first: bool = False):
        super().__init__(engine)
        self.release = threading.Event()
        self.refuse_first = refuse_first
        self.writes = 0

    def write(self, batch: MessageBatch) -> WriteResult:
        self.release.wait(30)
        self.writes += 1
        if self.refuse_first and self.writes == 1:
            raise IntegrityError("INSERT INTO readings", {}, Exception("refused for the test"))
        return super().write(batch)


@pytest.mark.parametrize("process", [False, True], ids=["rules-thread", "rules-process"])
def test_the_rules_commit_only_once_the_readings_they_rest_on_are(
    plant: Plant, mosquitto: tuple[str, int], process: bool
) -> None:
    store = HeldStore(plant.engine)
    gateway = plant.sensor_of["b-cold"][0]
    publisher = Publisher(mosquitto)
    worker = _worker(plant, mosquitto, f"ingest-held-{uuid.uuid4().hex[:8]}", True, process, store)
    reports: list[RulesReport] = []
    worker.on_rules = reports.append
    try:
        rows = plant.readings("b-cold", 900, [5.0] * 5 + [13.0] * 20 + [5.0] * 5)
        publisher.send(plant, "b-cold", rows)  # one envelope, one batch
        time.sleep(2.0)  # the rules have had the batch; its commit waits for the writer's
        assert _stored(plant, gateway) == 0
        assert count(plant, select(func.count(Excursion.id))) == 0
        assert reports == []
        released = datetime.now(UTC)
        store.release.set()
        opened = select(func.count(Excursion.id)).where(
            Excursion.zone_id == "b-cold", Excursion.rule == "alarm high > 12 for 15 min"
        )
        wait_until(lambda: count(plant, opened) == 1, 30, "the excursion after the readings")
        assert _stored(plant, gateway) == len(rows)
        wait_until(lambda: worker.evaluated == len(rows), 10, "the rules' report")
        assert sum(len(r.opened) for r in reports) >= 1
        # each report says when its commit returned: after the writer's, which was released
        assert all(r.committed_at and r.committed_at >= released for r in reports if r.readings)
    finally:
        store.release.set()
        worker.stop()
        publisher.close()


@pytest.mark.parametrize("process", [False, True], ids=["rules-thread", "rules-process"])
def test_a_batch_refused_as_a_whole_is_evaluated_as_it_was_stored(
    plant: Plant, mosquitto: tuple[str, int], process: bool
) -> None:
    store = HeldStore(plant.engine, refuse_first=True)
    store.release.set()
    gateway = plant.sensor_of["b-cold"][0]
    publisher = Publisher(mosquitto)
    worker = _worker(plant, mosquitto, f"ingest-held-{uuid.uuid4().hex[:8]}", True, process, store)
    try:
        rows = plant.readings("b-cold", 1200, [5.0] * 5 + [13.0] * 20 + [5.0] * 5)
        publisher.send(plant, "b-cold", rows)
        wait_until(lambda: _stored(plant, gateway) == len(rows), 30, "the readings, one by one")
        wait_until(lambda: worker.evaluated == len(rows), 30, "the rules, once")
        with plant.session() as s:
            found = [
                (e.rule, e.started_at, e.ended_at)
                for e in s.scalars(select(Excursion).where(Excursion.zone_id == "b-cold"))
                if e.rule == "alarm high > 12 for 15 min"
            ]
        assert found == [("alarm high > 12 for 15 min", at(1205), at(1225))]
        assert store.writes >= 2  # refused, then written one by one
    finally:
        worker.stop()
        publisher.close()
    assert worker.evaluated == len(rows)  # the rolled-back evaluation is not counted


@pytest.mark.parametrize("process", [False, True], ids=["rules-thread", "rules-process"])
def test_readings_of_a_sensor_a_status_just_added_wait_for_that_status(
    plant: Plant, mosquitto: tuple[str, int], process: bool
) -> None:
    """A batch is handed to the rules when decoded, unless a batch before it waits to be
    handed once committed (decision 0017): a status adding a sensor is held at the writer
    while the sensor's first readings are decoded; they are evaluated after the status is
    committed, with the sensor in its zone, not ignored as a sensor nobody knows."""
    store = HeldStore(plant.engine)
    gateway, site = plant.sensor_of["b-cold"][0], SITE_OF["b-cold"]
    sensor = f"b-cold-t2-{uuid.uuid4().hex[:6]}"
    publisher = Publisher(mosquitto)
    worker = _worker(plant, mosquitto, f"ingest-order-{uuid.uuid4().hex[:8]}", True, process, store)
    try:
        status = wire.StatusMessage(
            v=1,
            gateway=gateway,
            site=site,
            state="online",
            at=datetime.now(UTC),
            sensors=[
                wire.SensorInfo(id=sensor, zone="b-cold", model="sim", quantities=["temperature"])
            ],
        )
        topic = wire.topic(site, gateway, "status")
        publisher.client.publish(topic, wire.encode(status), qos=1).wait_for_publish(10)
        time.sleep(1.0)  # the status batch is at the writer, held
        rows = [
            (g, seq, sensor, *rest)
            for g, seq, _sensor, *rest in plant.readings(
                "b-cold", 1500, [5.0] * 5 + [13.0] * 20 + [5.0] * 5
            )
        ]
        publisher.send(plant, "b-cold", rows)
        time.sleep(1.0)  # decoded meanwhile, while the status waits
        assert count(plant, select(func.count(Sensor.id)).where(Sensor.id == sensor)) == 0
        store.release.set()
        opened = select(func.count(Excursion.id)).where(
            Excursion.zone_id == "b-cold",
            Excursion.rule == "alarm high > 12 for 15 min",
            Excursion.started_at == at(1505),
        )
        wait_until(lambda: count(plant, opened) == 1, 30, "the new sensor's excursion")
    finally:
        store.release.set()
        worker.stop()
        publisher.close()


@pytest.mark.parametrize("process", [False, True], ids=["rules-thread", "rules-process"])
def test_a_connection_the_database_drops_loses_no_batch_and_no_evaluation(
    plant: Plant, mosquitto: tuple[str, int], pg_url: str, process: bool
) -> None:
    """The worker's engine does not ping before each transaction (a round trip a batch):
    when the database drops its connections (a restart, a failover), the writer and the
    rules each run their transaction again on a new one."""
    engine = make_engine(pg_url, ping=False)  # as `coldchain-cloud ingest` makes it
    gateway = plant.sensor_of["b-cold"][0]
    publisher = Publisher(mosquitto)
    worker = _worker(
        plant, mosquitto, f"ingest-drop-{uuid.uuid4().hex[:8]}", True, process, Store(engine)
    )
    try:
        first = plant.readings("b-cold", 2000, [5.0] * 10)
        publisher.send(plant, "b-cold", first)
        wait_until(lambda: worker.evaluated == len(first), 30, "the first batch evaluated")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert dropped is not None and dropped[0] >= (2 if process else 1)
        rows = plant.readings("b-cold", 2010, [13.0] * 20 + [5.0] * 5)
        publisher.send(plant, "b-cold", rows)
        opened = select(func.count(Excursion.id)).where(
            Excursion.zone_id == "b-cold",
            Excursion.rule == "alarm high > 12 for 15 min",
            Excursion.started_at == at(2010),
        )
        wait_until(lambda: count(plant, opened) == 1, 30, "the excursion after the drop")
        assert _stored(plant, gateway) == len(first) + len(rows)
    finally:
        worker.stop()
        publisher.close()
        engine.dispose()
