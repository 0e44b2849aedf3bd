"""Dead letters stay bounded under a flood, are listed for admins, and replay after a fix
through the normal, idempotent ingest path."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from flask.testing import FlaskClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.readings import DeadLetter, Reading, Sensor, Site, Zone
from cloud.entrypoints.api import create_app
from cloud.entrypoints.api.auth import COOKIE
from cloud.entrypoints.api.database import EXTENSION
from cloud.service_layer.message_batch import FLOOD_KEEP, KEEP_BYTES, MessageBatch
from cloud.service_layer.signatures import create_user
from cloud.service_layer.store import Store
from edge import wire
from edge.wire import Quality
from tests.conftest import ingest_args, start_ingest, wait_until

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def envelope(gateway: str, site: str, seq: int, value: float = 5.5) -> bytes:
    body = wire.encode_reading_body("probe-1", "temperature", value, "C", Quality.OK, NOW)
    return wire.assemble_readings(gateway, site, [(seq, body)])


def test_a_flood_costs_a_few_rows_and_a_huge_payload_a_kib(pg_url: str) -> None:
    engine = make_engine(pg_url)
    batch = MessageBatch()
    junk = wire.topic("site-x", "gw-flood", "readings")
    for n in range(500):
        assert batch.add_message(junk, b"{junk %d" % n, NOW) is not None
    huge = b'{"v": 1, "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    refused = batch.add_message(wire.topic("site-x", "gw-big", "readings"), huge, NOW)
    assert refused is not None and refused.own_row
    assert (
        batch.add_message(
            wire.topic("site-y", "gw-good", "readings"), envelope("gw-good", "site-y", 1), NOW
        )
        is None
    )
    Store(engine).write(batch)

    with session_factory(engine)() as db:
        rows = db.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()
        flood = [r for r in rows if r.gateway_id == "gw-flood"]
        assert len(flood) == FLOOD_KEEP + 1  # 20 kept whole, 480 counted in one row
        assert sum(r.count for r in flood) == 500
        (counted,) = [r for r in flood if r.count > 1]
        assert counted.count == 480 and "480 more refused messages from gw-flood" in counted.reason
        assert not counted.whole
        (big,) = [r for r in rows if r.gateway_id == "gw-big"]
        assert big.size == len(huge) and len(big.payload) == 1024 and not big.whole
        assert sum(len(r.payload) for r in rows) < FLOOD_KEEP * 64 + 2 * KEEP_BYTES
        assert db.scalar(select(func.count()).select_from(Reading)) == 1  # the good one stored
    engine.dispose()


@contextmanager
def api_app(pg_url: str) -> Iterator[FlaskClient]:
    app = create_app(pg_url, {"TESTING": True, "SECRET_KEY": "test"})
    try:
        yield app.test_client(use_cookies=False)  # each request says who calls
    finally:
        app.extensions[EXTENSION].kw["bind"].dispose()


def _people(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with session_factory(engine)() as db:
        db.info["actor"] = "test-setup"
        create_user(db, "admin", "Admin User", "admin", PASSWORD)
        create_user(db, "viewer", "Viewer User", "viewer", PASSWORD)
        db.commit()
    engine.dispose()


def _logged_in(client_api: FlaskClient, username: str) -> dict[str, str]:
    """Headers with the session cookie of the person, logged in (dead letters are no
    token's business: no scope carries them)."""
    login = client_api.application.test_client()
    answer = login.post("/api/session", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200
    cookie = login.get_cookie(COOKIE, path="/api")
    assert cookie is not None
    return {"Cookie": f"{COOKIE}={cookie.value}"}


def test_a_refused_status_replays_once_its_zone_exists(mosquitto, pg_url, processes) -> None:
    """A status naming a zone nobody registered is refused in that part; once an admin adds
    the zone, replaying the dead letter stores the sensor, and a second replay changes
    nothing."""
    worker = start_ingest(processes, "ingest", ingest_args(pg_url, mosquitto))
    tag = uuid.uuid4().hex[:8]
    site, gateway, zone = f"site-{tag}", f"gw-{tag}", f"zone-{tag}"
    status = wire.StatusMessage(
        v=1,
        gateway=gateway,
        site=site,
        state="online",
        at=NOW,
        sensors=[wire.SensorInfo(id=f"s-{tag}", zone=zone, model="X", quantities=["temperature"])],
    )
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{tag}")
    client.connect(*mosquitto)
    client.loop_start()
    client.publish(wire.topic(site, gateway, "status"), wire.encode(status), qos=1)
    client.publish(wire.topic(site, gateway, "readings"), b"{not json", qos=1)
    client.publish(wire.topic(site, gateway, "status"), b"", qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    engine = make_engine(pg_url)

    def letters() -> list[DeadLetter]:
        with session_factory(engine)() as db:
            return list(db.scalars(select(DeadLetter).where(DeadLetter.gateway_id == gateway)))

    found = wait_until(lambda: len(letters()) == 2 and letters(), 20, "two dead letters")
    refused = next(d for d in found if d.topic.endswith("/status"))
    junk = next(d for d in found if d.topic.endswith("/readings"))
    assert f"zone zone-{tag} does not exist" in refused.reason, refused.reason
    assert worker.terminate() == 0

    _people(pg_url)
    with api_app(pg_url) as client_api:
        admin, viewer = _logged_in(client_api, "admin"), _logged_in(client_api, "viewer")
        _replay_after_the_fix(client_api, engine, admin, viewer, tag, refused, junk)
    engine.dispose()


def _replay_after_the_fix(
    client_api: FlaskClient,
    engine: Engine,
    admin: dict[str, str],
    viewer: dict[str, str],
    tag: str,
    refused: DeadLetter,
    junk: DeadLetter,
) -> None:
    site, gateway, zone = f"site-{tag}", f"gw-{tag}", f"zone-{tag}"
    as_admin = admin
    listed = client_api.get(f"/api/dead-letters?gateway={gateway}", headers=as_admin).get_json()
    assert {d["id"] for d in listed["items"]} == {refused.id, junk.id}
    assert all(d["whole"] and d["replayed_at"] is None for d in listed["items"])
    one = client_api.get(f"/api/dead-letters/{junk.id}", headers=as_admin).get_json()
    assert one["payload_text"] == "{not json" and one["size"] == 9
    refused_view = client_api.get("/api/dead-letters", headers=viewer)
    assert refused_view.status_code == 403
    bad = client_api.get("/api/dead-letters?replayed=perhaps", headers=as_admin)
    assert bad.status_code == 400 and "replayed" in json.dumps(bad.get_json())

    # The fix: the zone is registered. Then the dead letters are replayed by filter.
    with session_factory(engine)() as db:
        db.info["actor"] = "admin"
        db.merge(Site(id=site, name="Site", kind="warehouse"))  # heard of already
        db.add(Zone(id=zone, site_id=site, name="Cold room", kind="cold_room"))
        db.commit()
    done = client_api.post(
        "/api/dead-letters/replay", json={"gateway": gateway}, headers=as_admin
    ).get_json()
    assert done["replayed"] == 2 and done["stored"] == 1
    outcomes = {o["dead_letter_id"]: o for o in done["outcomes"]}
    assert outcomes[refused.id]["stored"] and outcomes[refused.id]["detail"].startswith("stored")
    assert outcomes[junk.id]["detail"].startswith("refused again: ")
    with session_factory(engine)() as db:
        assert db.get(Sensor, f"s-{tag}") is not None
        replayed = db.get(DeadLetter, refused.id)
        assert replayed is not None and replayed.replayed_at is not None
    # Replayed ones are left out of the next filtered replay; one by one it is idempotent.
    again = client_api.post(
        "/api/dead-letters/replay", json={"gateway": gateway}, headers=as_admin
    ).get_json()
    assert again["replayed"] == 0
    once_more = client_api.post(f"/api/dead-letters/{refused.id}/replay", headers=as_admin)
    assert once_more.status_code == 200 and once_more.get_json()["stored"]
    with session_factory(engine)() as db:
        assert (
            db.scalar(select(func.count()).select_from(Sensor).where(Sensor.id == f"s-{tag}")) == 1
        )
    missing = client_api.post("/api/dead-letters/999999/replay", headers=as_admin)
    assert missing.status_code == 404


def test_a_dead_letter_not_kept_whole_is_not_replayed(pg_url: str) -> None:
    engine = make_engine(pg_url)
    batch = MessageBatch()
    huge = b"{" + b" " * (KEEP_BYTES + 1) + b"}"
    batch.add_message(wire.topic("site-x", "gw-big", "readings"), huge, NOW)
    Store(engine).write(batch)
    _people(pg_url)
    with session_factory(engine)() as db:
        (letter_id,) = db.scalars(select(DeadLetter.id))
    with api_app(pg_url) as client_api:
        admin = _logged_in(client_api, "admin")
        answer = client_api.post(f"/api/dead-letters/{letter_id}/replay", headers=admin)
    assert answer.status_code == 409
    assert "not kept whole" in answer.get_json()["detail"]
    engine.dispose()
