"""Lost records show: a gateway's seqs over real Mosquitto into PostgreSQL, the scheduler's
alert on a gap, drops that explain a gap, late arrival, numbering gone backwards, and the
gateway as the API shows it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.readings import Gateway as GatewayRow
from cloud.adapters.orm.readings import Reading
from cloud.adapters.orm.readings import Sensor as SensorRow
from cloud.domain.clock import utcnow
from cloud.entrypoints.scheduler import Scheduler, SchedulerConfig
from edge import wire
from edge.wire import Quality
from tests.conftest import ingest_args, start_ingest, wait_until
from tests.integration.api_support import running_api

pytestmark = pytest.mark.integration
GRACE_S = 60.0


class Gateway:
    """A gateway as the cloud hears it: envelopes and heartbeats published by hand."""

    def __init__(self, broker: tuple[str, int], name: str, sessions):
        tag = uuid.uuid4().hex[:8]
        self.site, self.id = f"site-{tag}", f"{name}-{tag}"
        self.sensor = f"probe-{tag}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{self.id}")
        self.client.connect(*broker)
        self.client.loop_start()
        # Its status first, as a gateway's on connecting: its probe is a sensor the cloud
        # knows (readings of an unknown sensor raise an alert of their own, decision 0028).
        status = wire.StatusMessage(
            v=wire.SCHEMA_VERSION,
            gateway=self.id,
            site=self.site,
            state="online",
            at=datetime.now(UTC),
            zones=[wire.ZoneInfo(id=f"zone-{tag}", name="Cold room", low=2, high=8)],
            sensors=[
                wire.SensorInfo(
                    id=self.sensor, zone=f"zone-{tag}", model="sim", quantities=["temperature"]
                )
            ],
        )
        topic = wire.topic(self.site, self.id, "status")
        self.client.publish(topic, wire.encode(status), qos=1).wait_for_publish(5)

        def registered() -> bool:
            with sessions() as s:
                return s.get(SensorRow, self.sensor) is not None

        wait_until(registered, 30, f"{self.id}'s status applied")

    def publish(self, seqs: range) -> None:
        taken = datetime.now(UTC)
        for start in range(seqs.start, seqs.stop, 100):
            part = range(start, min(start + 100, seqs.stop))
            body = wire.encode_reading_body(self.sensor, "temperature", 5.0, "C", Quality.OK, taken)
            payload = wire.assemble_readings(self.id, self.site, [(s, body) for s in part])
            topic = wire.topic(self.site, self.id, "readings")
            self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def heartbeat(self, at: datetime, **fields: object) -> None:
        beat = wire.Heartbeat(
            v=wire.SCHEMA_VERSION,
            gateway=self.id,
            site=self.site,
            at=at,
            **{"buffer_depth": 0, "dropped_records": 0, **fields},  # type: ignore[arg-type]
        )
        topic = wire.topic(self.site, self.id, "heartbeat")
        self.client.publish(topic, wire.encode(beat), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def cloud(mosquitto, pg_url, processes):
    start_ingest(processes, "ingest", ingest_args(pg_url, mosquitto))
    engine = make_engine(pg_url)
    yield session_factory(engine)
    engine.dispose()


def stored(sessions, gateway: str) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).where(Reading.gateway_id == gateway)) or 0


def dropped(sessions, gateway: str) -> int | None:
    with sessions() as s:
        row = s.get(GatewayRow, gateway)
        return None if row is None else row.dropped_records


def gateway_alerts(sessions, gateway: str) -> list[Alert]:
    with sessions() as s:
        query = select(Alert).where(Alert.subject_kind == "gateway", Alert.subject_id == gateway)
        return list(s.scalars(query.order_by(Alert.id)))


def scheduler_at(sessions, offset_s: float) -> Scheduler:
    at = utcnow() + timedelta(seconds=offset_s)
    return Scheduler(sessions, SchedulerConfig(sequence_grace_s=GRACE_S), clock=lambda: at)


def test_lost_records_raise_one_alert_that_late_arrival_resolves(mosquitto, cloud, pg_url):
    gw = Gateway(mosquitto, "gw-lost", cloud)
    gw.publish(range(1, 1041))
    gw.publish(range(1101, 1201))  # records 1041-1100 lost on the way
    gw.heartbeat(
        utcnow(),
        buffer_depth=3,
        oldest_unsent_age_s=4.5,
        disk_free_bytes=123_456_789,
        clock_synchronised=True,
        next_seq=1201,
    )
    wait_until(lambda: stored(cloud, gw.id) == 1140, 30, "1140 readings stored")

    assert scheduler_at(cloud, 0).tick().sequence_alerts == 0  # within the grace period
    assert gateway_alerts(cloud, gw.id) == []
    assert scheduler_at(cloud, GRACE_S + 5).tick().sequence_alerts == 1
    assert scheduler_at(cloud, GRACE_S + 10).tick().sequence_alerts == 0  # raised once
    (alert,) = gateway_alerts(cloud, gw.id)
    assert "records 1041-1100 missing" in alert.title and gw.id in alert.title
    assert alert.state == "open"

    with running_api(pg_url) as api:
        got = api.client.get(f"/api/gateways/{gw.id}", headers=api.as_("viewer"))
        assert got.status_code == 200, got.json
        body = got.json
        assert body["missing"] == [
            {"first": 1041, "last": 1100, "count": 60, "covered_by_drops": False}
        ]
        assert body["records_missing"] == 60
        assert (body["buffer_depth"], body["oldest_unsent_age_s"]) == (3, 4.5)
        assert (body["disk_free_bytes"], body["clock_synchronised"]) == (123_456_789, True)
        assert body["dropped_records"] == 0 and body["last_heartbeat"] is not None
        listed = api.client.get("/api/gateways", headers=api.as_("viewer")).json["items"]
        assert gw.id in {g["id"] for g in listed}
        assert api.client.get("/api/gateways/nope", headers=api.as_("viewer")).status_code == 404

        gw.publish(range(1041, 1101))  # the lost records turn up after all
        wait_until(lambda: stored(cloud, gw.id) == 1200, 30, "the late records stored")
        scheduler_at(cloud, GRACE_S + 20).tick()
        (alert,) = gateway_alerts(cloud, gw.id)
        assert alert.state == "resolved" and "arrived late" in alert.title
        again = api.client.get(f"/api/gateways/{gw.id}", headers=api.as_("viewer")).json
        assert again["missing"] == [] and again["received_ranges"] == 1
    gw.close()


def test_a_gap_the_gateway_reported_as_dropped_raises_nothing(mosquitto, cloud):
    gw = Gateway(mosquitto, "gw-full", cloud)
    gw.publish(range(1, 1041))
    gw.publish(range(1101, 1201))
    gw.heartbeat(utcnow(), dropped_records=60)  # its buffer was full: it dropped the 60
    wait_until(lambda: stored(cloud, gw.id) == 1140, 30, "1140 readings stored")
    wait_until(lambda: dropped(cloud, gw.id) == 60, 10, "the heartbeat stored")
    assert scheduler_at(cloud, GRACE_S + 5).tick().sequence_alerts == 0
    assert gateway_alerts(cloud, gw.id) == []
    gw.close()


def test_numbering_gone_backwards_is_reported(mosquitto, cloud):
    gw = Gateway(mosquitto, "gw-image", cloud)
    gw.publish(range(1, 201))
    now = utcnow()
    gw.heartbeat(now - timedelta(seconds=30), next_seq=201)
    gw.heartbeat(now, next_seq=51)  # an old image: its buffer gives 51, 52, ... again
    wait_until(lambda: stored(cloud, gw.id) == 200, 30, "200 readings stored")
    wait_until(
        lambda: any(a.kind.startswith("seq_restart") for a in _tick_and_alerts(cloud, gw.id)),
        10,
        "the restart alert",
    )
    (alert,) = gateway_alerts(cloud, gw.id)
    assert "restarted at 51" in alert.title and "below 201" in alert.title
    gw.close()


def _tick_and_alerts(sessions, gateway: str) -> list[Alert]:
    scheduler_at(sessions, 0).tick()
    return gateway_alerts(sessions, gateway)
