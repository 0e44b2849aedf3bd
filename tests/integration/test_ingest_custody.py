"""RFID observations published over Mosquitto become custody intervals in the ingest commit."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.readings import Observation, ReadPoint
from cloud.adapters.orm.traceability import Batch, CustodyInterval, Item, Product
from cloud.service_layer.message_batch import MessageBatch
from cloud.service_layer.store import Store
from edge import gs1, wire
from tests.conftest import ingest_args, start_ingest, wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
GTIN = "09506000134352"


def epc(serial: int) -> str:
    return gs1.encode_sgtin96(GTIN, serial, company_prefix_length=7)


def register_items(url: str) -> None:
    """A product, a lot and three serialised vials with their tag EPCs."""
    engine = make_engine(url)
    with session_factory(engine)() as session:
        session.info.update(actor="test:custody", reason="test inventory")  # if audited
        session.add(
            Product(
                gtin=GTIN,
                name="Insulin pen",
                low=2,
                high=8,
                freeze_sensitive=True,
                stability_budget_min=720,
                shelf_life_days=730,
            )
        )
        session.flush()
        lot = Batch(gtin=GTIN, lot="L7", expires_on=date(2027, 6, 30), quantity=3)
        session.add(lot)
        session.flush()
        session.add_all(
            Item(gtin=GTIN, serial=str(n), epc=epc(n), batch_id=lot.id) for n in (1, 2, 3)
        )
        session.commit()
    engine.dispose()


def status(gateway: str, site: str) -> wire.StatusMessage:
    """The gateway's online status: a dock and a cold room, a read point at each door."""
    return wire.StatusMessage(
        v=wire.SCHEMA_VERSION,
        gateway=gateway,
        site=site,
        state="online",
        at=T0,
        site_info=wire.SiteInfo(id=site, name="Leeds", kind="warehouse"),
        zones=[
            wire.ZoneInfo(id=f"{site}-dock", name="Dock", kind="ambient"),
            wire.ZoneInfo(id=f"{site}-cold", name="Cold room", low=2, high=8),
        ],
        read_points=[
            wire.ReadPointInfo(
                id=f"{site}-dock-door",
                zone=f"{site}-dock",
                business_step="receiving",
                reader="r1",
            ),
            wire.ReadPointInfo(
                id=f"{site}-cold-door",
                zone=f"{site}-cold",
                business_step="storing",
                reader="r1",
            ),
        ],
    )


def observations(
    gateway: str, site: str, reads: list[tuple[int, int, str, int]]
) -> wire.ObservationsEnvelope:
    """An rfid envelope of (seq, serial, read point suffix, minute) reads."""
    return wire.ObservationsEnvelope(
        v=wire.SCHEMA_VERSION,
        gateway=gateway,
        site=site,
        sent_at=T0,
        records=[
            wire.Observation(
                seq=seq,
                epc=epc(serial),
                read_point=f"{site}-{point}",
                first_seen=T0 + timedelta(minutes=minute),
                last_seen=T0 + timedelta(minutes=minute, seconds=3),
                count=4,
                direction="in",
            )
            for seq, serial, point, minute in reads
        ],
    )


def test_observations_over_mosquitto_become_custody(mosquitto, pg_url, processes) -> None:
    register_items(pg_url)
    start_ingest(processes, "ingest", ingest_args(pg_url, mosquitto))
    tag = uuid.uuid4().hex[:8]
    site, gateway = f"site-{tag}", f"gw-{tag}"
    engine = make_engine(pg_url)

    def scalars(query):  # type: ignore[no-untyped-def]
        with engine.connect() as conn:
            return conn.execute(query).scalars().all()

    def timeline(serial: int) -> list[tuple[str, float, float | None, str]]:
        with session_factory(engine)() as session:
            item = session.scalars(select(Item).where(Item.epc == epc(serial))).one()
            rows = session.scalars(
                select(CustodyInterval)
                .where(CustodyInterval.item_id == item.id)
                .order_by(CustodyInterval.started_at)
            ).all()
        minutes = lambda t: None if t is None else (t - T0) / timedelta(minutes=1)  # noqa: E731
        return [(r.zone_id, minutes(r.started_at), minutes(r.ended_at), r.basis) for r in rows]

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-gw-{tag}")
    client.connect(*mosquitto)
    client.loop_start()
    try:
        client.publish(
            wire.topic(site, gateway, "status"), wire.encode(status(gateway, site)), 1, True
        )
        wait_until(
            lambda: len(scalars(select(ReadPoint.id).where(ReadPoint.gateway_id == gateway))) == 2,
            30,
            "the gateway's read points",
        )
        rfid = wire.topic(site, gateway, "rfid")
        received = wire.encode(
            observations(gateway, site, [(1, 1, "dock-door", 0), (2, 2, "dock-door", 1)])
        )
        client.publish(rfid, received, qos=1).wait_for_publish(5)
        wait_until(lambda: timeline(1) and timeline(2), 30, "custody of the received vials")
        assert timeline(1) == [(f"{site}-dock", 0, None, "observed")]
        assert timeline(2) == [(f"{site}-dock", 1, None, "observed")]
        assert timeline(3) == []  # never seen

        stored = wire.encode(observations(gateway, site, [(3, 1, "cold-door", 20)]))
        client.publish(rfid, stored, qos=1).wait_for_publish(5)
        client.publish(rfid, received, qos=1).wait_for_publish(5)  # a redelivery changes nothing
        wait_until(lambda: len(timeline(1)) == 2, 30, "vial 1 to move into the cold room")
        wait_until(
            lambda: (
                len(scalars(select(Observation.seq).where(Observation.gateway_id == gateway))) == 3
            ),
            30,
            "the observations",
        )
        assert timeline(1) == [
            (f"{site}-dock", 0, 20, "observed"),
            (f"{site}-cold", 20, None, "observed"),
        ]
        assert timeline(2) == [(f"{site}-dock", 1, None, "observed")]
    finally:
        client.publish(wire.topic(site, gateway, "status"), b"", 1, True).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
        engine.dispose()


def test_store_write_rebuilds_custody_on_sqlite(sqlite_url: str) -> None:
    """The embedded default: the same write path on SQLite, replays included."""
    register_items(sqlite_url)
    store = Store(make_engine(sqlite_url))
    first = MessageBatch()
    first.statuses.append((status("gw-1", "wh-1"), T0))
    first.add_observations(observations("gw-1", "wh-1", [(1, 3, "dock-door", 5)]), T0)
    store.write(first)
    later = MessageBatch()
    later.add_observations(observations("gw-1", "wh-1", [(2, 3, "cold-door", 9)]), T0)
    later.add_observations(observations("gw-1", "wh-1", [(1, 3, "dock-door", 5)]), T0)
    store.write(later)
    with session_factory(store.engine)() as session:
        rows = session.scalars(select(CustodyInterval).order_by(CustodyInterval.started_at))
        got = [(r.zone_id, r.started_at, r.ended_at, r.basis) for r in rows]
    store.engine.dispose()
    assert got == [
        ("wh-1-dock", T0 + timedelta(minutes=5), T0 + timedelta(minutes=9), "observed"),
        ("wh-1-cold", T0 + timedelta(minutes=9), None, "observed"),
    ]
