"""Readings of a sensor no status registered are kept, alerted once per gateway, ignored by
the rules until a status registers the sensor, then evaluated (decision 0028)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.quality import Excursion
from cloud.adapters.orm.readings import Reading
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


def test_readings_of_an_unknown_sensor_are_kept_alerted_and_evaluated_once_registered(
    plant: Plant, pg_url: str, mosquitto: tuple[str, int], processes: Callable[..., object]
) -> None:
    start_ingest(processes, "ingest", ingest_args(pg_url, mosquitto, shared=True))
    gateway, site = plant.sensor_of["b-cold"][0], SITE_OF["b-cold"]
    sensor = f"b-cold-new-{uuid.uuid4().hex[:6]}"
    publisher = Publisher(mosquitto)
    try:
        rows = [
            (g, seq, sensor, *rest)
            for g, seq, _sensor, *rest in plant.readings(
                "b-cold", 2000, [5.0] * 5 + [13.0] * 20 + [5.0] * 5
            )
        ]
        publisher.send(plant, "b-cold", rows[:15])
        publisher.send(plant, "b-cold", rows[15:])
        stored = select(func.count()).select_from(Reading).where(Reading.sensor_id == sensor)
        wait_until(lambda: count(plant, stored) == 30, 30, "the unknown sensor's readings")
        alerts = select(Alert).where(Alert.kind == "unknown_sensor")
        with plant.session() as s:
            (alert,) = s.scalars(alerts)  # one per gateway, however many batches
            assert (alert.subject_kind, alert.subject_id) == ("gateway", gateway)
            assert f"Gateway {gateway} sends readings of unknown sensor {sensor}" in alert.title
        zone_excursions = select(func.count(Excursion.id)).where(
            Excursion.zone_id == "b-cold", Excursion.started_at == at(2005)
        )
        assert count(plant, zone_excursions) == 0  # ignored by the rules while unknown

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
        opened = select(func.count(Excursion.id)).where(
            Excursion.zone_id == "b-cold",
            Excursion.rule == "alarm high > 12 for 15 min",
            Excursion.started_at == at(2005),
        )
        wait_until(lambda: count(plant, opened) == 1, 30, "the kept readings evaluated")
    finally:
        publisher.close()
