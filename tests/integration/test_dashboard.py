"""The control room's callbacks against a real database: login and roles, the overview's
live cards (only changed ones sent again), the zone chart's downsampling, the pages' reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.readings import DeadLetter, Reading, ReadingRollup
from cloud.domain.thinning import extremes
from cloud.service_layer.message_batch import MessageBatch
from cloud.service_layer.signatures import create_user
from cloud.service_layer.store import Store
from cloud.views.zone_chart import HourRollup, rollup_extremes, zone_chart
from dashboard.app import create_app
from edge import wire

PASSWORD = "correct horse battery"


def seed(url: str) -> None:
    now = datetime.now(UTC)
    status = wire.StatusMessage(
        v=1,
        gateway="gw1",
        site="wh1",
        state="online",
        at=now,
        site_info=wire.SiteInfo(
            id="wh1", name="Leeds DC", kind="warehouse", timezone="Europe/London"
        ),
        zones=[
            wire.ZoneInfo(id="cold", name="Cold room 1", low=2, high=8),
            wire.ZoneInfo(id="amb", name="Ambient A", kind="ambient", low=15, high=25),
            wire.ZoneInfo(id="frz", name="Freezer", kind="freezer", low=-25, high=-15),
        ],
        sensors=[
            wire.SensorInfo(id="c1", zone="cold", model="XY-MD02", quantities=["temperature"]),
            wire.SensorInfo(id="c2", zone="cold", model="HMP4", quantities=["temperature"]),
            wire.SensorInfo(id="a1", zone="amb", model="RS-WS-N01", quantities=["temperature"]),
            wire.SensorInfo(id="f1", zone="frz", model="XY-MD02", quantities=["temperature"]),
        ],
    )
    batch = MessageBatch()
    batch.statuses.append((status, now))

    def reading(seq: int, sensor: str, quantity: str, value: float, age_s: float) -> tuple:
        unit = "C" if quantity == "temperature" else "%RH"
        taken = now - timedelta(seconds=age_s)
        return ("gw1", seq, sensor, quantity, value, unit, "ok", taken, now)

    batch.readings = [
        reading(1, "c1", "temperature", 4.2, 5),
        reading(2, "c2", "temperature", 5.1, 4),
        reading(3, "c1", "humidity", 48.0, 5),
        reading(4, "a1", "temperature", 27.3, 3),  # above 25: out of range
        reading(5, "f1", "temperature", -20.0, 600),  # ten minutes old: no data
        reading(6, "c1", "temperature", 9.9, 900),  # older than seq 1: must not win
    ]
    engine = make_engine(url)
    Store(engine).write(batch)
    with session_factory(engine)() as session:
        session.info["actor"] = "test"
        create_user(session, "qa", "Quinn Quality", "qa", PASSWORD)
        create_user(session, "viewer", "Vic Viewer", "viewer", PASSWORD)
        session.commit()
    engine.dispose()


def call(
    client: FlaskClient,
    outputs: list[Any],
    inputs: list[Any],
    state: list[Any] | None = None,
    changed: str | None = None,
) -> Any:
    """POST one callback as the browser would; outputs/inputs as (id, property[, value])."""

    def key(component: Any) -> str:
        if isinstance(component, dict):
            return json.dumps(
                {k: (["ALL"] if v == "ALL" else v) for k, v in sorted(component.items())},
                separators=(",", ":"),
            )
        return component

    def spec(entry: Any) -> Any:
        if isinstance(entry, list):
            return [spec(e) for e in entry]
        out = {"id": entry[0], "property": entry[1]}
        if len(entry) > 2:
            out["value"] = entry[2]
        return out

    names, output_spec = [], []
    for entry in outputs:
        if isinstance(entry, list):  # [(pattern id, property), [(id, property), ...]]
            (pattern, prop), matched = entry
            names.append(f"{key(pattern)}.{prop}")
            output_spec.append(spec(matched))
        else:
            names.append(f"{key(entry[0])}.{entry[1]}")
            output_spec.append(spec(entry))
    body = {
        "output": names[0] if len(names) == 1 else ".." + "...".join(names) + "..",
        "outputs": output_spec[0] if len(output_spec) == 1 else output_spec,
        "inputs": [spec(i) for i in inputs],
        "state": [spec(s) for s in state or []],
        "changedPropIds": [changed] if changed else [],
    }
    return client.post("/_dash-update-component", json=body)


def log_in(client: FlaskClient, username: str, password: str) -> Any:
    return call(
        client,
        [("login-location", "href"), ("login-message", "children")],
        [("login-submit", "n_clicks", 1), ("login-password", "n_submit", 0)],
        [
            ("login-username", "value", username),
            ("login-password", "value", password),
            ("login-location", "search", "?next=/alerts"),
        ],
        "login-submit.n_clicks",
    )


def overview(client: FlaskClient, zones: list[str], gateways: list[str], seen: Any) -> Any:
    zone_ids = [{"type": "overview-zone", "zone": z} for z in zones]
    gw_ids = [{"type": "overview-gateway", "gateway": g} for g in gateways]
    z_all = {"type": "overview-zone", "zone": "ALL"}
    g_all = {"gateway": "ALL", "type": "overview-gateway"}
    return call(
        client,
        [
            ("overview-counts", "children"),
            ("overview-updated", "children"),
            [(z_all, "children"), [(i, "children") for i in zone_ids]],
            [(g_all, "children"), [(i, "children") for i in gw_ids]],
            ("overview-sites", "children"),
            ("overview-seen", "data"),
        ],
        [("overview-tick", "n_intervals", 1)],
        [("overview-seen", "data", seen)],
        "overview-tick.n_intervals",
    )


def test_login_refuses_wrong_password_and_anonymous_callbacks(sqlite_url: str) -> None:
    seed(sqlite_url)
    client = create_app(sqlite_url, secret_key="test").server.test_client()
    assert client.get("/").status_code == 200
    anonymous = overview(client, ["cold"], ["gw1"], None)
    assert anonymous.status_code == 401
    refused = log_in(client, "qa", "not the password")
    assert "Wrong username or password" in refused.get_data(as_text=True)
    accepted = log_in(client, "qa", PASSWORD).get_json()
    assert accepted["response"]["login-location"]["href"] == "/alerts"
    assert overview(client, ["cold"], ["gw1"], None).status_code == 200
    client.get("/logout")
    assert overview(client, ["cold"], ["gw1"], None).status_code == 401


def test_the_control_room_keeps_duties_apart(sqlite_url: str) -> None:
    """Machines never log in; an admin is offered no QA action; a user whose role change
    waits for a second admin acts as a viewer in the control room too."""
    from cloud.domain.access import ACTIONS
    from cloud.service_layer.roles import add_account
    from cloud.views.control_room import ControlRoom
    from dashboard.auth import PERMISSIONS, may

    seed(sqlite_url)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as session:
        session.info["actor"] = "test"
        admin = create_user(session, "admin", "Ada Admin", "admin", PASSWORD)
        create_user(session, "scanner", "Dock scanner", "operator", PASSWORD, kind="machine")
        add_account(session, admin, "newqa", "New QA", "qa", PASSWORD)
        session.commit()
    room = ControlRoom(session_factory(engine))
    assert room.authenticate("scanner", PASSWORD) is None
    assert "scanner" not in {u.username for u in room.users()}
    client = create_app(sqlite_url, secret_key="test").server.test_client()
    assert "Wrong username or password" in log_in(client, "scanner", PASSWORD).get_data(
        as_text=True
    )
    pending = room.authenticate("newqa", PASSWORD)
    assert pending is not None and pending.role == "viewer"
    ada = room.authenticate("admin", PASSWORD)
    assert ada is not None
    assert PERMISSIONS == {name: action.roles for name, action in ACTIONS.items()}
    for action in ("disposition", "investigate", "recall", "assign", "resolve", "acknowledge"):
        assert not may(action, ada) and not may(action, pending)
    assert may("profiles", ada) and may("dead_letters", ada)
    engine.dispose()


def test_overview_shows_every_zone_and_resends_only_changed_cards(sqlite_url: str) -> None:
    seed(sqlite_url)
    client = create_app(sqlite_url, refresh_ms=1000, secret_key="test").server.test_client()
    log_in(client, "viewer", PASSWORD)
    zones, gateways = ["amb", "frz", "cold"], ["gw1"]
    first = overview(client, zones, gateways, None)
    assert first.status_code == 200, first.get_data(as_text=True)
    body = first.get_json()["response"]
    text = json.dumps(body)
    assert "4.2 to 5.1 C" in text  # two probes in the cold room, newest values only
    assert "9.9" not in text
    assert "48 %RH" in text
    assert "27.3 C" in text and "WARNING" in text and "\\u25c6" in text  # out of limits
    assert "UNKNOWN" in text and "\\u25a1" in text  # ten minutes without a reading
    assert "limits 2 to 8 C" in text and "2 sensor(s)" in text
    assert "GMT" in text or "BST" in text  # site-local time
    assert "Frozen batches" in text
    seen = body["overview-seen"]["data"]
    assert set(seen) == {"z:amb", "z:frz", "z:cold", "g:gw1"}

    # Nothing changed but the clock: the counts come again, unchanged cards do not.
    engine = make_engine(sqlite_url)
    later = MessageBatch()
    now = datetime.now(UTC)
    later.readings = [("gw1", 7, "a1", "temperature", 20.0, "C", "ok", now, now)]
    Store(engine).write(later)
    engine.dispose()
    second = overview(client, zones, gateways, seen).get_json()["response"]
    sent = json.dumps(second)
    assert "20.0 C" in sent  # the ambient card changed: back to OK
    assert "4.2 to 5.1 C" not in sent  # the cold room's did not: not sent again
    assert "overview-sites" not in second


def test_unknown_zone_set_redraws_the_sites(sqlite_url: str) -> None:
    seed(sqlite_url)
    client = create_app(sqlite_url, secret_key="test").server.test_client()
    log_in(client, "viewer", PASSWORD)
    response = overview(client, ["cold"], [], None).get_json()["response"]
    assert "Ambient A" in json.dumps(response["overview-sites"])


def test_extremes_keep_every_peak_and_trough() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [(start + timedelta(minutes=i), 5.0 + (i % 7) * 0.01) for i in range(525_600)]
    points[300_001] = (points[300_001][0], 14.2)  # one minute's spike in a year
    points[400_003] = (points[400_003][0], -3.5)
    kept = extremes(points, 500, start, start + timedelta(days=365))
    assert len(kept) <= 1000
    values = [v for _, v in kept]
    assert max(values) == 14.2 and min(values) == -3.5
    assert [t for t, _ in kept] == sorted(t for t, _ in kept)
    assert points[300_001] in kept  # at the time it was taken


def test_rollup_extremes_merge_hours_with_their_times() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = [
        HourRollup(
            start + timedelta(hours=h),
            4.0,
            6.0,
            start + timedelta(hours=h, minutes=10),
            start + timedelta(hours=h, minutes=50),
        )
        for h in range(8760)
    ]
    hours[5000] = HourRollup(
        hours[5000].bucket_start,
        4.0,
        12.5,
        hours[5000].min_at,
        hours[5000].bucket_start + timedelta(minutes=33),
    )
    points = rollup_extremes(hours, 300, start, start + timedelta(days=365))
    assert len(points) <= 600
    assert (hours[5000].bucket_start + timedelta(minutes=33), 12.5) in points


def test_zone_chart_reads_rollups_for_long_ranges(pg_url: str) -> None:
    seed(pg_url)
    engine = make_engine(pg_url)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=365)
    rows = []
    for sensor in ("c1", "c2"):
        for h in range(24 * 365):
            bucket = start + timedelta(hours=h)
            peak = 11.0 if (sensor, h) == ("c2", 4321) else 6.0
            rows.append(
                {
                    "sensor_id": sensor,
                    "quantity": "temperature",
                    "bucket_start": bucket,
                    "n": 60,
                    "sum": 300.0,
                    "min": 4.0,
                    "max": peak,
                    "min_at": bucket + timedelta(minutes=5),
                    "max_at": bucket + timedelta(minutes=45),
                    "bad": 0,
                }
            )
    with engine.begin() as conn:
        conn.execute(ReadingRollup.__table__.delete())
        conn.execute(ReadingRollup.__table__.insert(), rows)
    with session_factory(engine)() as session:
        chart = zone_chart(session, "cold", start, end, max_points=1500)
        assert session.scalar(select(ReadingRollup.max).order_by(ReadingRollup.max.desc())) == 11
    engine.dispose()
    assert chart.source == "rollups"
    assert sum(len(s.points) for s in chart.series) <= 1500
    peak = max(v for s in chart.series for _, v in s.points)
    assert peak == 11.0
    assert chart.low == 2 and chart.high == 8 and chart.timezone == "Europe/London"


def test_zone_chart_refuses_an_empty_range(sqlite_url: str) -> None:
    seed(sqlite_url)
    engine = make_engine(sqlite_url)
    now = datetime.now(UTC)
    with session_factory(engine)() as session, pytest.raises(ValueError, match="range is empty"):
        zone_chart(session, "cold", now, now)
    with session_factory(engine)() as session, pytest.raises(LookupError, match="nowhere"):
        zone_chart(session, "nowhere", now - timedelta(hours=1), now)
    engine.dispose()


def test_read_models_and_actions_on_the_demo_data(pg_url: str) -> None:
    """On PostgreSQL: the holds, alerts, trace, transfers, expiry and audit read models over
    the demo data, and the actions the pages take through them."""
    from cloud.entrypoints.demo_seed import DEMO_PASSWORD, INSULIN, mark_as_demo, seed
    from cloud.service_layer.signatures import SignatureRefused
    from cloud.views.alerts import acknowledge_alert, alert_queue, assign_alert, comment_alert
    from cloud.views.audit import audit_entries, integrity
    from cloud.views.control_room import ControlRoom
    from cloud.views.expiry import expiry_board
    from cloud.views.holds import disposition, frozen_batches
    from cloud.views.trace import find, trace
    from cloud.views.transfers import movements
    from edge.gs1 import encode_sgtin96

    mark_as_demo(pg_url)
    assert seed(pg_url)
    assert not seed(pg_url)  # a second run leaves the data alone
    engine = make_engine(pg_url)
    room = ControlRoom(session_factory(engine))
    qa = room.authenticate("qa", DEMO_PASSWORD)
    operator = room.authenticate("operator", DEMO_PASSWORD)
    assert qa is not None and operator is not None and room.authenticate("qa", "nope") is None

    held = room.read(frozen_batches)
    lots = {h.lot for h in held}
    assert {"INS-2401", "INS-2402", "INS-2403"} <= lots  # yesterday's failure in Leeds
    first = next(h for h in held if h.lot == "INS-2401")
    assert first.exposure_minutes > 60 and first.max_value is not None and first.max_value > 12
    # The failure lasted two hours: the warning and alarm levels of the one episode are
    # counted once (they were added up: 340 min), and shown apart.
    assert first.exposure_minutes <= 120
    assert set(first.level_minutes) == {"warning", "alarm"}
    assert all(0 < m <= first.exposure_minutes for m in first.level_minutes.values())
    assert first.excursion.startswith("ALARM high")  # the most severe level heads the row
    assert first.budget_min == INSULIN.budget_min and first.mkt is not None

    with pytest.raises(SignatureRefused):
        room.act(
            qa,
            "checked",
            disposition,
            first.hold_id,
            "release",
            "qa",
            "wrong",
            "checked",
            user_id="qa",
        )
    with pytest.raises(SignatureRefused):  # operators cannot sign a release
        room.act(
            operator,
            "x",
            disposition,
            first.hold_id,
            "release",
            "operator",
            DEMO_PASSWORD,
            "x",
            user_id="operator",
        )
    hold = room.act(
        qa,
        "assessed",
        disposition,
        first.hold_id,
        "reject",
        "qa",
        DEMO_PASSWORD,
        "assessed",
        user_id="qa",
    )
    assert hold.status == "rejected" and hold.signature_id is not None
    assert first.hold_id not in {h.hold_id for h in room.read(frozen_batches)}

    queue = room.read(alert_queue)
    alert = queue[0]
    room.act(operator, "seen", acknowledge_alert, alert.id, "operator")
    room.act(operator, None, comment_alert, alert.id, "operator", "door found open")
    room.act(qa, "QA takes it", assign_alert, alert.id, "qa")
    after = {a.id: a for a in room.read(alert_queue)}[alert.id]
    assert after.state == "acknowledged" and after.acknowledged_by == "Olly Operator"
    assert after.assignee == "Quinn Quality (QA)"
    assert [c.text for c in after.comments] == ["door found open"]

    epc = encode_sgtin96(INSULIN.gtin, 6789, 7, 1)
    assert room.read(find, epc).batches[0][1] == "INS-2401"
    scanned = room.read(find, f"]d201{INSULIN.gtin}21{6790}")
    assert scanned.batches[0][1] == "INS-2401" and "(21)6790" in scanned.understood
    assert room.read(find, "(01)09506000134352(10)VAC-118").batches[0][1] == "VAC-118"
    assert len(room.read(find, INSULIN.gtin).batches) == 4
    with pytest.raises(ValueError, match="not a GS1 scan"):
        room.read(find, "(01)123")
    traced = room.read(trace, first.batch_id)
    assert traced.status == "rejected" and traced.items == 6
    assert traced.where_now == [("Leeds distribution centre / Cold room 1", 6)]
    assert len(traced.exposures) >= 2

    moving = {m.id: m for m in room.read(movements)}
    assert moving["TR-0002"].state == "in_transit" and moving["TR-0002"].truck
    assert moving["TR-0003"].gate == []  # ambient monitors may load
    assert moving["TR-0001"].discrepancies and "missing" in moving["TR-0001"].discrepancies[0]

    tiers = {(line.lot, line.tier) for line in room.read(expiry_board, datetime.now(UTC))}
    assert {("VAC-117", "expired"), ("INS-2402", "30"), ("VAC-118", "60")} <= tiers
    assert not any(lot == "INS-2401" for lot, _ in tiers)  # rejected: no longer stock

    signed = room.read(audit_entries, None, None, None, None, None, True)
    assert any("Meaning: Rejection" in m for row in signed for m in row.signatures)
    assert room.read(integrity).intact
    engine.dispose()


def test_cooling_switch_warms_the_zone_and_recovers(tmp_path: Any) -> None:
    """The demo's cooling failure: the flag file stops the cooling, removing it restores it."""
    from click.testing import CliRunner

    from cloud.entrypoints.demo_seed import AMBIENT, CoolingSwitch, main

    switch = CoolingSwitch(tmp_path / "cooling-failure", "wh-leeds-cold1")
    assert switch.offset(5.0, 1000.0) == 0.0
    result = CliRunner().invoke(
        main, ["cooling-failure", "wh-leeds-cold1", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 0 and "stopped" in result.output
    assert switch.offset(5.0, 1000.0) == 0.0  # the moment it failed
    after_10 = switch.offset(5.0, 1600.0)
    after_60 = switch.offset(5.0, 4600.0)
    assert 3.0 < after_10 < after_60 < AMBIENT - 5.0  # warming towards ambient, slower and slower
    CliRunner().invoke(
        main, ["cooling-failure", "wh-leeds-cold1", "--data-dir", str(tmp_path), "--off"]
    )
    recovering = switch.offset(5.0, 4600.0)
    assert recovering == pytest.approx(after_60)
    assert switch.offset(5.0, 4600.0 + 1800) < recovering / 10  # cooled down half an hour later


def test_gateways_page_shows_heartbeat_and_missing_records(sqlite_url: str) -> None:
    seed(sqlite_url)  # gw1's readings 1-6
    now = datetime.now(UTC)
    batch = MessageBatch()
    batch.readings = [
        ("gw1", seq, "c1", "temperature", 4.0, "C", "ok", now, now) for seq in (10, 11, 12)
    ]
    batch.seen["gw1"] = ("wh1", now)
    batch.heartbeats.append(
        wire.Heartbeat(
            v=1,
            gateway="gw1",
            site="wh1",
            at=now,
            buffer_depth=7,
            dropped_records=0,
            disk_free_bytes=5 * 1024**3,
            clock_synchronised=False,
        )
    )
    engine = make_engine(sqlite_url)
    Store(engine).write(batch)
    engine.dispose()
    client = create_app(sqlite_url, secret_key="test").server.test_client()
    refresh = [("gateways-table", "children")], [("gateways-tick", "n_intervals", 1)]
    assert call(client, *refresh).status_code == 401
    log_in(client, "viewer", PASSWORD)
    shown = json.dumps(call(client, *refresh).get_json())
    assert "7-9 (3)" in shown  # readings 7, 8 and 9 never arrived
    assert "NOT SYNCHRONISED" in shown and "5 GB" in shown
    assert '"href": "/gateways"' in json.dumps(client.get("/_dash-layout").get_json())


def test_dead_letters_page_lists_filters_and_replays_for_admins(sqlite_url: str) -> None:
    seed(sqlite_url)
    now = datetime.now(UTC)
    body = wire.encode_reading_body("c1", "temperature", 4.4, "C", wire.Quality.OK, now)
    good = wire.assemble_readings("gw1", "wh1", [(40, body)], now)
    batch = MessageBatch()
    batch.add_dead_letter(wire.topic("wh1", "gw1", "readings"), good, "refused: test", now)
    batch.add_dead_letter(wire.topic("wh1", "gw2", "readings"), b"{junk", "not JSON", now)
    engine = make_engine(sqlite_url)
    Store(engine).write(batch)
    with session_factory(engine)() as session:
        session.info["actor"] = "test"
        create_user(session, "admin", "Ada Admin", "admin", PASSWORD)
        session.commit()
        letter = session.scalars(select(DeadLetter).where(DeadLetter.gateway_id == "gw1")).one()
    client = create_app(sqlite_url, secret_key="test").server.test_client()

    def listed(gateway: str | None, reason: str | None) -> Any:
        return call(
            client,
            [("dead-letters-table", "children")],
            [
                ("dead-letters-tick", "n_intervals", 1),
                ("dead-letters-gateway", "value", gateway),
                ("dead-letters-reason", "value", reason),
                ("dead-letters-changed", "data", 0),
            ],
        )

    log_in(client, "viewer", PASSWORD)
    assert listed(None, None).status_code == 204  # viewers do not see them
    log_in(client, "admin", PASSWORD)
    every = json.dumps(listed(None, None).get_json())
    assert "refused: test" in every and "not JSON" in every
    only_gw2 = json.dumps(listed("gw2", None).get_json())
    assert "not JSON" in only_gw2 and "refused: test" not in only_gw2
    by_reason = json.dumps(listed(None, "REFUSED").get_json())
    assert "refused: test" in by_reason and "not JSON" not in by_reason
    button = {"letter": letter.id, "type": "dead-letters-replay"}
    replayed = call(
        client,
        [("dead-letters-outcome", "children"), ("dead-letters-changed", "data")],
        [[(button, "n_clicks", 1)]],
        [("dead-letters-changed", "data", 0)],
        json.dumps(button, separators=(",", ":")) + ".n_clicks",
    ).get_json()["response"]
    assert replayed["dead-letters-outcome"]["children"].startswith(
        f"Dead letter {letter.id}: stored"
    )
    with session_factory(engine)() as session:
        assert session.get(Reading, ("gw1", 40)) is not None
        assert session.get(DeadLetter, letter.id).replayed_at is not None
    engine.dispose()
    assert '"href": "/dead-letters"' in json.dumps(client.get("/_dash-layout").get_json())
