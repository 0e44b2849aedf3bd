"""A gateway speaks only for itself (issue 17, first case): through the real Mosquitto, the
ingest worker process and PostgreSQL, a status cannot rewrite another site's zones or time
zone, nor its own zones' limits and kind (those become proposals an admin decides), and
readings of another gateway's sensor are dead-lettered, never stored or evaluated."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.audit import AuditEntry
from cloud.adapters.orm.readings import (
    DeadLetter,
    MasterDataProposal,
    Reading,
    Sensor,
    Site,
    Zone,
)
from edge import wire
from tests.conftest import ingest_args, start_ingest, wait_until
from tests.integration.api_support import running_api

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def status(
    gateway: str, site: str, zones: list[wire.ZoneInfo], sensors: list[wire.SensorInfo], tz: str
) -> bytes:
    kind = "truck" if "truck" in site else "warehouse"
    return wire.encode(
        wire.StatusMessage(
            v=wire.SCHEMA_VERSION,
            gateway=gateway,
            site=site,
            state="online",
            at=NOW,
            site_info=wire.SiteInfo(id=site, name=site.title(), kind=kind, timezone=tz),
            zones=zones,
            sensors=sensors,
        )
    )


def readings(gateway: str, site: str, sensor: str, seq0: int, values: list[float]) -> bytes:
    bodies = [
        (
            seq0 + n,
            wire.encode_reading_body(
                sensor, "temperature", v, "C", wire.Quality.OK, NOW + timedelta(minutes=n)
            ),
        )
        for n, v in enumerate(values)
    ]
    return wire.assemble_readings(gateway, site, bodies, datetime.now(UTC))


@pytest.fixture
def client(mosquitto: tuple[str, int]) -> Iterator[mqtt.Client]:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
    c.connect(*mosquitto)
    c.loop_start()
    yield c
    c.loop_stop()
    c.disconnect()


def test_a_gateway_cannot_rewrite_master_data_or_speak_for_another(
    mosquitto: tuple[str, int], pg_url: str, processes: object, client: mqtt.Client
) -> None:
    tag = uuid.uuid4().hex[:6]
    leeds, truck = f"wh-leeds-{tag}", f"truck-07-{tag}"
    gw_leeds, gw_truck = f"gw-leeds-{tag}", f"gw-truck-{tag}"
    cold1, reefer = f"{leeds}-cold1", f"{truck}-reefer"
    probe, truck_probe = f"{cold1}-t1", f"{reefer}-t1"
    start_ingest(processes, "ingest", ingest_args(pg_url, mosquitto))  # type: ignore[arg-type]
    engine = make_engine(pg_url)
    sessions = session_factory(engine)

    def send(site: str, gateway: str, channel: str, payload: bytes) -> None:
        client.publish(wire.topic(site, gateway, channel), payload, qos=1).wait_for_publish(10)

    def one(query: object) -> object:
        with sessions() as s:
            return s.execute(query).one()  # type: ignore[call-overload]

    cold_room = wire.ZoneInfo(id=cold1, name="Cold room 1", kind="cold_room", low=2, high=8)
    leeds_probe = wire.SensorInfo(id=probe, zone=cold1, model="XY-MD02", quantities=["temperature"])
    send(
        leeds,
        gw_leeds,
        "status",
        status(gw_leeds, leeds, [cold_room], [leeds_probe], "Europe/London"),
    )
    wait_until(
        lambda: one(select(func.count()).select_from(Sensor).where(Sensor.id == probe))[0],
        30,
        "Leeds registered",
    )

    # truck-07's status describes Leeds cold room 1 as its own zone, -50..50 and ambient, and
    # Leeds' own probe as its sensor
    hijack = wire.ZoneInfo(id=cold1, name="Cold room 1", kind="ambient", low=-50, high=50)
    reefer_zone = wire.ZoneInfo(id=reefer, name="Reefer", kind="truck_compartment", low=2, high=8)
    stolen = wire.SensorInfo(id=probe, zone=reefer, model="XY-MD02", quantities=["temperature"])
    own = wire.SensorInfo(id=truck_probe, zone=reefer, model="XY-MD02", quantities=["temperature"])
    send(
        truck,
        gw_truck,
        "status",
        status(gw_truck, truck, [reefer_zone, hijack], [own, stolen], "UTC"),
    )
    # ... and then claims Leeds as its site, with another time zone
    send(leeds, gw_truck, "status", status(gw_truck, leeds, [hijack], [], "Pacific/Kiritimati"))
    wait_until(
        lambda: (
            one(
                select(func.count())
                .select_from(DeadLetter)
                .where(DeadLetter.reason.like("status refused%"))
            )[0]
            >= 2
        ),
        30,
        "both statuses refused in part",
    )
    with sessions() as s:
        zone = s.get(Zone, cold1)
        assert zone is not None and (zone.site_id, zone.kind, zone.low, zone.high) == (
            leeds,
            "cold_room",
            2,
            8,
        )
        assert s.get(Site, leeds).timezone == "Europe/London"  # type: ignore[union-attr]
        assert s.get(Sensor, probe).gateway_id == gw_leeds  # type: ignore[union-attr]
        assert s.get(Sensor, truck_probe).gateway_id == gw_truck  # type: ignore[union-attr]  # its own: kept
        reasons = " | ".join(s.scalars(select(DeadLetter.reason)).all())
        assert f"zone {cold1}: it is a zone of site {leeds}, not of {truck}" in reasons
        assert f"sensor {probe}: it is gateway {gw_leeds}'s" in reasons
        assert f"gateway {gw_truck} belongs to site {truck}" in reasons
        kinds = set(s.scalars(select(Alert.kind).where(Alert.subject_id == gw_truck)))
        assert "gateway_status_refused" in kinds

    # readings of Leeds' probe sent by the truck: dead letters, not readings
    send(truck, gw_truck, "readings", readings(gw_truck, truck, probe, 1, [30.0] * 5))
    send(leeds, gw_leeds, "readings", readings(gw_leeds, leeds, probe, 1, [5.0] * 5))
    wait_until(
        lambda: (
            one(select(func.count()).select_from(Reading).where(Reading.sensor_id == probe))[0] == 5
        ),
        30,
        "Leeds' own readings",
    )
    time.sleep(1.0)
    with sessions() as s:
        stored = s.execute(
            select(Reading.gateway_id, Reading.value).where(Reading.sensor_id == probe)
        ).all()
        assert {(g, v) for g, v in stored} == {(gw_leeds, 5.0)}
        refused = s.scalars(
            select(DeadLetter.reason).where(
                DeadLetter.reason.like(f"sensor {probe} is registered%")
            )
        ).all()
        assert len(refused) == 5, refused

    # Leeds' own gateway now says 2..12 C and "freezer": a proposal each, nothing changed
    changed = wire.ZoneInfo(id=cold1, name="Cold room 1", kind="freezer", low=2, high=12)
    send(
        leeds,
        gw_leeds,
        "status",
        status(gw_leeds, leeds, [changed], [leeds_probe], "Europe/London"),
    )
    pending = select(MasterDataProposal).where(
        MasterDataProposal.subject_id == cold1, MasterDataProposal.state == "pending"
    )
    wait_until(lambda: len(_all(sessions, pending)) == 2, 30, "two proposals for the cold room")
    with sessions() as s:
        zone = s.get(Zone, cold1)
        assert (zone.kind, zone.low, zone.high) == ("cold_room", 2, 8)  # type: ignore[union-attr]
    # the same status again refreshes them, it does not add more
    send(
        leeds,
        gw_leeds,
        "status",
        status(gw_leeds, leeds, [changed], [leeds_probe], "Europe/London"),
    )
    time.sleep(1.0)
    assert len(_all(sessions, pending)) == 2

    with running_api(pg_url) as api:
        listed = api.client.get(
            "/api/master-data-proposals?state=pending", headers=api.as_("admin")
        ).get_json()["items"]
        by_field = {p["field"]: p for p in listed if p["subject_id"] == cold1}
        assert (by_field["high"]["current"], by_field["high"]["proposed"]) == (8.0, 12.0)
        assert (
            api.client.get("/api/master-data-proposals", headers=api.as_("qa")).status_code == 403
        )
        no_reason = api.client.post(
            f"/api/master-data-proposals/{by_field['high']['id']}/accept",
            json={},
            headers=api.as_("admin"),
        )
        assert no_reason.status_code == 422
        accepted = api.client.post(
            f"/api/master-data-proposals/{by_field['high']['id']}/accept",
            json={"reason": "cold room 1 re-qualified for 2-12 C (CC-114)"},
            headers=api.as_("admin"),
        )
        assert accepted.status_code == 200 and accepted.get_json()["state"] == "accepted"
        rejected = api.client.post(
            f"/api/master-data-proposals/{by_field['kind']['id']}/reject",
            json={"reason": "gateway config typo"},
            headers=api.as_("admin"),
        )
        assert rejected.get_json()["decided_by"] == "admin"
        again = api.client.post(
            f"/api/master-data-proposals/{by_field['kind']['id']}/accept",
            json={"reason": "changed my mind"},
            headers=api.as_("admin"),
        )
        assert again.status_code == 409
    with sessions() as s:
        zone = s.get(Zone, cold1)
        assert (zone.kind, zone.low, zone.high) == ("cold_room", 2, 12)  # type: ignore[union-attr]
        entry = s.scalars(
            select(AuditEntry).where(
                AuditEntry.record_table == "zones", AuditEntry.action == "update"
            )
        ).all()[-1]
        assert entry.reason == "cold room 1 re-qualified for 2-12 C (CC-114)"
    engine.dispose()


def _all(sessions: object, query: object) -> list[object]:
    with sessions() as s:  # type: ignore[operator]
        return list(s.scalars(query))
