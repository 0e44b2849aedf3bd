"""Every excursion reaches QA: the rules never skip readings. A PostgreSQL outage of minutes
while a zone goes out of range (the writer and the rules both wait; the rules resume from
their mark), and a reading the rules cannot evaluate (quarantined with the reason, while
another zone's excursion in the same batch is raised). Decision 0022."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, update

from cloud.adapters.engine import make_engine
from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.quality import Excursion, Exposure, Hold, QuarantinedReading, ZoneRuleState
from cloud.adapters.orm.readings import Reading
from cloud.entrypoints import rules_runner
from cloud.entrypoints.ingest import IngestWorker
from cloud.service_layer import rules
from cloud.service_layer.store import Store
from tests.conftest import wait_until
from tests.integration.test_rules import Plant, at
from tests.integration.test_rules_pipeline import Publisher, count
from tests.pg_cluster import Cluster

pytestmark = pytest.mark.integration
# how long PostgreSQL is down while the excursion is published (2 minutes unless set)
OUTAGE_S = float(os.environ.get("COLDCHAIN_TEST_OUTAGE_S", "120"))
ALARM = "alarm high > 12 for 15 min"


def start_worker(url: str, broker: tuple[str, int], process: bool) -> IngestWorker:
    """An ingest worker as the CLI makes it (no ping), in a shared group of its own."""
    tag = uuid.uuid4().hex[:8]
    worker = IngestWorker(
        Store(make_engine(url, ping=False)),
        *broker,
        client_id=f"outage-{tag}",
        shared=True,
        group=f"test-{tag}",
        rules_process=process,
    )
    worker.start()
    assert worker.connected.wait(10), "the ingest worker did not connect"
    assert worker.caught_up.wait(30), "the rules did not start"
    time.sleep(0.3)  # the SUBSCRIBE follows the CONNACK
    return worker


@pytest.fixture
def plant(pg_url: str) -> Iterator[Plant]:
    p = Plant(pg_url)
    try:
        yield p
    finally:
        p.engine.dispose()


@pytest.fixture
def outage_plant(own_postgres: tuple[Cluster, str]) -> Iterator[tuple[Cluster, Plant]]:
    cluster, url = own_postgres
    plant = Plant(url, tag=f"-{uuid.uuid4().hex[:6]}")
    try:
        yield cluster, plant
    finally:
        plant.engine.dispose()


@pytest.mark.parametrize("process", [True, False], ids=["rules-process", "rules-thread"])
def test_an_excursion_during_a_database_outage_is_raised_with_its_true_times(
    outage_plant: tuple[Cluster, Plant], private_broker: Callable[..., Any], process: bool
) -> None:
    cluster, plant = outage_plant
    # a broker of its own: no other test's readings of the same sensor ids reach this worker
    mosquitto = private_broker().start().address
    worker = start_worker(cluster.url("coldchain"), mosquitto, process)
    publisher = Publisher(mosquitto)
    try:
        calm = plant.readings("a-cold", 0, [5.0] * 20)
        for i in range(0, 20, 5):
            publisher.send(plant, "a-cold", calm[i : i + 5])
        wait_until(lambda: worker.evaluated >= 20, 30, "the calm readings to be evaluated")

        cluster.stop()
        # 45 minutes at 15 C in a 2-8 C room, then back: stamped in the past, sent at once
        excursion = plant.readings("a-cold", 20, [15.0] * 45 + [5.0] * 10)
        for i in range(0, len(excursion), 5):
            publisher.send(plant, "a-cold", excursion[i : i + 5])
        time.sleep(OUTAGE_S)
        cluster.start()

        gateway = plant.sensor_of["a-cold"][0]
        stored = select(func.count()).select_from(Reading).where(Reading.gateway_id == gateway)
        wait_until(lambda: count(plant, stored) == 75, 90, "the writer to store every reading")
        alarm = select(func.count(Excursion.id)).where(
            Excursion.zone_id == "a-cold", Excursion.rule == ALARM, Excursion.state == "closed"
        )
        wait_until(lambda: count(plant, alarm) == 1, 90, "the rules to raise the excursion")
        with plant.session() as s:
            raised = s.scalars(select(Excursion).where(Excursion.rule == ALARM)).one()
            assert (raised.zone_id, raised.started_at, raised.ended_at) == (
                "a-cold",
                at(20),
                at(65),
            )
            exposed = {x.batch_id for x in s.scalars(select(Exposure))}
            assert exposed == {plant.sensitive.id, plant.robust.id}
            assert {h.batch_id for h in s.scalars(select(Hold))} == exposed
            alerted = {(a.subject_kind, a.subject_id) for a in s.scalars(select(Alert))}
            assert ("excursion", str(raised.id)) in alerted
            # no "unknown conditions" where valid readings are stored (minutes 0-74)
            gaps = s.scalars(
                select(Excursion).where(
                    Excursion.zone_id == "a-cold",
                    Excursion.kind == "unknown_conditions",
                    Excursion.started_at < at(74),
                )
            ).all()
            assert [(g.started_at, g.ended_at) for g in gaps] == []
            assert s.scalar(select(func.count()).select_from(QuarantinedReading)) == 0
    finally:
        publisher.close()
        worker.stop()
        worker.store.engine.dispose()


def corrupt_state(plant: Plant, zone: str) -> None:
    """A zone's stored detector state that the detector cannot take (its watermark is not a
    number), version bumped as any writer of the row must."""
    with plant.session() as s:
        for row in s.scalars(select(ZoneRuleState).where(ZoneRuleState.zone_id == zone)):
            s.execute(
                update(ZoneRuleState)
                .where(ZoneRuleState.zone_id == zone, ZoneRuleState.profile_id == row.profile_id)
                .values(
                    state={**row.state, "watermark": "corrupt"}, version=ZoneRuleState.version + 1
                )
            )
        s.commit()


def test_a_reading_that_cannot_be_evaluated_is_quarantined_and_the_rest_evaluated(
    plant: Plant,
) -> None:
    config = rules.RulesConfig()
    first = plant.readings("a-cold", 0, [5.0] * 5) + plant.readings("b-cold", 0, [5.0] * 5)
    rules_runner.evaluate(plant.engine, "worker-1", first, config)
    corrupt_state(plant, "a-cold")
    config = rules.RulesConfig()  # a worker that kept nothing
    broken = plant.readings("a-cold", 5, [5.0] * 3)
    hot = plant.readings("b-cold", 5, [15.0] * 30 + [5.0] * 5)
    batch = [*hot[:10], *broken, *hot[10:]]  # one batch, the two zones interleaved
    report = rules_runner.evaluate(plant.engine, "worker-1", batch, config)
    assert (report.readings, report.quarantined) == (len(batch), 3)
    with plant.session() as s:
        quarantined = s.scalars(select(QuarantinedReading)).all()
        assert sorted(q.seq for q in quarantined) == sorted(r[1] for r in broken)
        assert all("could not evaluate" in q.reason for q in quarantined)
        assert all("TypeError" in q.reason or "ValueError" in q.reason for q in quarantined)
        raised = s.scalars(select(Excursion).where(Excursion.rule == ALARM)).one()
        assert (raised.zone_id, raised.started_at, raised.ended_at) == ("b-cold", at(5), at(35))
        # the rules mark went past the batch: a restart does not evaluate it again
        assert rules.progress(s, "worker-1") == max(r[8] for r in batch)
