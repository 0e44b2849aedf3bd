"""A zone's own limits and custom profiles on PostgreSQL, through the REST API: own limits
replace the preset's edge, a change reaches a running worker's kept set-up with the next
readings, a custom profile created and assigned by an admin drives the rules, bad bodies are
refused whole, and every change is in the audit trail with its reason."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from cloud.adapters.orm.audit import AuditEntry
from cloud.adapters.orm.quality import Excursion, MonitoringProfile
from cloud.adapters.orm.readings import Zone
from cloud.entrypoints import rules_runner
from cloud.service_layer.message_batch import MessageBatch
from cloud.service_layer.rules.config import RulesConfig
from cloud.service_layer.signatures import create_user
from tests.integration.test_rules import PASSWORD, Plant
from tests.integration.test_rules_api import _dispose_app_engines, logged_in

pytestmark = pytest.mark.integration
__all__ = ["_dispose_app_engines"]  # the fixture is used here too


@pytest.fixture
def plant(pg_url: str) -> Iterator[Plant]:
    p = Plant(pg_url)
    with p.session("setup") as s:
        create_user(s, "admin.ada", "Ada Admin", "admin", PASSWORD)
        s.commit()
    try:
        yield p
    finally:
        p.engine.dispose()


def as_worker(plant: Plant, rows: list[tuple], config: RulesConfig) -> None:
    """Store the readings, then evaluate them as a running ingest worker does: through the
    rules runner, with the set-up it keeps between groups."""
    batch = MessageBatch()
    batch.readings.extend(rows)
    plant.store.write(batch)
    assert rules_runner.evaluate(plant.engine, "test-worker", rows, config) is not None


def humidity(rows: list[tuple]) -> list[tuple]:
    return [(*r[:3], "humidity", r[4], "%RH", *r[6:]) for r in rows]


def excursions(plant: Plant, zone: str = "a-cold") -> list[tuple[str, str, str, str]]:
    with plant.session() as s:
        return [
            (e.rule, e.kind, e.level, e.state)
            for e in s.scalars(
                select(Excursion).where(Excursion.zone_id == zone).order_by(Excursion.id)
            )
        ]


def reasons(plant: Plant, table: str) -> set[str | None]:
    with plant.session() as s:
        return set(s.scalars(select(AuditEntry.reason).where(AuditEntry.record_table == table)))


def test_own_limits_inside_the_preset_alarm_after_the_presets_delay(plant: Plant) -> None:
    with plant.session("setup") as s:
        zone = s.get(Zone, "a-cold")
        assert zone is not None
        zone.low, zone.high = 3.0, 7.0
        s.info["reason"] = "room qualified for 3-7 C"
        s.commit()
    # 7.5 C is inside the 2-8 C preset but beyond the zone's 7 C, for 70 minutes
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 5 + [7.5] * 70))
    found = excursions(plant)
    assert ("alarm high > 7 for 60 min", "high", "alarm", "open") in found
    assert ("warning high > 7 for 10 min", "high", "warning", "open") in found
    # and the low side: 2.5 C is beyond the zone's 3 C
    plant.ingest(plant.readings("a-cold", 75, [2.5] * 65))
    assert ("alarm low < 3 for 60 min", "low", "alarm", "open") in excursions(plant)


def test_a_limit_change_through_the_api_counts_for_the_next_readings(
    plant: Plant, pg_url: str
) -> None:
    config = RulesConfig(ttl_s=3600)  # a worker that would keep its set-up for an hour
    as_worker(plant, plant.readings("a-cold", 0, [5.0] * 5), config)
    admin = logged_in(plant, pg_url, "admin.ada")
    no_reason = admin.patch("/api/zones/a-cold", json={"high": 7.0})
    assert no_reason.status_code == 422
    changed = admin.patch(
        "/api/zones/a-cold", json={"low": 3.0, "high": 7.0, "reason": "requalified, CC-0112"}
    )
    assert changed.status_code == 200, changed.json
    shown = admin.get("/api/zones/a-cold/profiles").json
    assert shown["own_limits"] == {"low": 3.0, "high": 7.0}
    assert "alarm high > 7 for 60 min" in shown["profiles"][0]["limits"]

    as_worker(plant, plant.readings("a-cold", 5, [7.5] * 70), config)
    assert ("alarm high > 7 for 60 min", "high", "alarm", "open") in excursions(plant)
    assert "requalified, CC-0112" in reasons(plant, "zones")


def custom_rh() -> dict[str, Any]:
    return {
        "name": "rh-45",
        "description": "dry store, at most 45 %RH",
        "quantity": "humidity",
        "limits": [
            {"level": "warning", "kind": "high", "limit": 40, "delay_min": 5, "deadband": 1},
            {"level": "alarm", "kind": "high", "limit": 45, "delay_min": 10, "deadband": 1},
        ],
        "cumulative": [
            {"level": "alarm", "direction": "above", "limit": 50, "allowed_min": 30,
             "window_min": 1440}
        ],
        "max_gap_min": 30,
        "gap_alarm_min": 120,
        "reason": "dry-store SOP-77",
    }  # fmt: skip


def test_a_custom_profile_created_and_assigned_drives_the_rules(plant: Plant, pg_url: str) -> None:
    config = RulesConfig(ttl_s=3600)
    as_worker(plant, plant.readings("a-cold", 0, [5.0] * 3), config)
    admin = logged_in(plant, pg_url, "admin.ada")
    created = admin.post("/api/profiles", json=custom_rh())
    assert created.status_code == 201, created.json
    assert created.json["name"] == "rh-45" and created.json["preset"] is False
    assert created.json["limits"][1] == {
        "level": "alarm",
        "kind": "high",
        "limit": 45.0,
        "delay_min": 10.0,
        "deadband": 1.0,
    }
    assert "alarm high > 45 for 10 min" in created.json["rules"]
    again = admin.post("/api/profiles", json=custom_rh())
    assert again.status_code == 409
    preset = admin.post("/api/profiles", json={**custom_rh(), "name": "2-8C"})
    assert preset.status_code == 409

    viewer = logged_in(plant, pg_url, "view.vic")
    names = [p["name"] for p in viewer.get("/api/profiles").json["items"]]
    assert {"2-8C", "15-25C", "frozen", "humidity", "rh-45"} <= set(names)
    assert viewer.get("/api/profiles/rh-45").json["cumulative"][0]["window_min"] == 1440
    assert viewer.get("/api/profiles/nothing").status_code == 404

    assigned = admin.put(
        "/api/zones/a-cold/profiles",
        json={"profiles": ["2-8C", "rh-45"], "reason": "dry goods moved in, CC-0113"},
    )
    assert assigned.status_code == 200, assigned.json
    rows = humidity(plant.readings("a-cold", 3, [35.0] * 3 + [47.0] * 15))
    as_worker(plant, rows, config)
    found = excursions(plant)
    assert ("alarm high > 45 for 10 min", "humidity", "alarm", "open") in found
    assert ("warning high > 40 for 5 min", "humidity", "warning", "open") in found
    assert "dry-store SOP-77" in reasons(plant, "monitoring_profiles")
    assert "dry-store SOP-77" in reasons(plant, "monitoring_levels")
    assert "dry goods moved in, CC-0113" in reasons(plant, "zone_profiles")


def _with(**changes: Any) -> dict[str, Any]:
    return {**custom_rh(), **changes}


def _level(**changes: Any) -> dict[str, Any]:
    base = {"level": "alarm", "kind": "high", "limit": 45, "delay_min": 10, "deadband": 1}
    return _with(limits=[{**base, **changes}])


BAD = [
    (_level(limit=math.nan), "limits.0.limit"),
    (_level(limit=math.inf), "limits.0.limit"),
    (_level(limit="warm"), "limits.0.limit"),
    (_level(delay_min=-5), "limits.0.delay_min"),
    (_level(deadband=-0.5), "limits.0.deadband"),
    (_level(level="panic"), "limits.0.level"),
    (_level(kind="sideways"), "limits.0.kind"),
    (_level(colour="red"), "limits.0.colour"),
    (_level(limit=120), "limits"),  # humidity beyond 100 %
    (
        _with(
            quantity="temperature",
            limits=[
                {"level": "alarm", "kind": "high", "limit": 2, "delay_min": 10},
                {"level": "alarm", "kind": "low", "limit": 8, "delay_min": 10},
            ],
        ),
        "limits",
    ),  # inverted: the high limit under the low one
    (
        _with(limits=[{"level": "alarm", "kind": "high", "limit": 45, "delay_min": 10}] * 2),
        "limits",
    ),  # the same rule twice
    (_with(limits=[]), "limits"),
    (_with(quantity="pressure"), "quantity"),
    (_with(name=""), "name"),
    (_with(name="x" * 33), "name"),
    (_with(max_gap_min=0), "max_gap_min"),
    (_with(gap_alarm_min=10), "gap_alarm_min"),  # under max_gap_min
    (_with(freeze_limit=math.nan), "freeze_limit"),
    (
        _with(
            cumulative=[
                {
                    "level": "alarm",
                    "direction": "above",
                    "limit": 50,
                    "allowed_min": 60,
                    "window_min": 30,
                }
            ]
        ),
        "cumulative.0.window_min",
    ),
    (
        _with(
            cumulative=[
                {
                    "level": "alarm",
                    "direction": "up",
                    "limit": 50,
                    "allowed_min": 6,
                    "window_min": 30,
                }
            ]
        ),
        "cumulative.0.direction",
    ),
    ({k: v for k, v in custom_rh().items() if k != "reason"}, "reason"),
    (_with(reason=""), "reason"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
def test_a_bad_profile_is_refused_naming_the_field_and_nothing_is_stored(
    plant: Plant, pg_url: str, body: dict[str, Any], field: str
) -> None:
    admin = logged_in(plant, pg_url, "admin.ada")
    refused = admin.post("/api/profiles", json=body)
    assert refused.status_code == 422, refused.json
    assert refused.mimetype == "application/problem+json"
    assert field in [e["field"] for e in refused.json["errors"]], refused.json
    with plant.session() as s:
        assert s.get(MonitoringProfile, body.get("name") or "") is None
    assert not reasons(plant, "monitoring_profiles")
    assert not reasons(plant, "monitoring_levels")


def test_only_an_admin_creates_or_assigns_profiles(plant: Plant, pg_url: str) -> None:
    for username in ("view.vic", "qa.jane"):
        client = logged_in(plant, pg_url, username)
        assert client.post("/api/profiles", json=custom_rh()).status_code == 403
        put = client.put("/api/zones/a-cold/profiles", json={"profiles": [], "reason": "x"})
        assert put.status_code == 403
        patch = client.patch("/api/zones/a-cold", json={"high": 7.0, "reason": "x"})
        assert patch.status_code == 403
    with plant.session() as s:
        assert s.get(MonitoringProfile, "rh-45") is None
        zone = s.get(Zone, "a-cold")
        assert zone is not None and zone.high == 8.0


def test_an_admin_assigns_profiles_on_the_zone_page_with_a_reason(plant: Plant) -> None:
    from cloud.views import profiles as profile_views
    from cloud.views.control_room import ControlRoom

    room = ControlRoom(plant.sessions)
    admin = room.authenticate("admin.ada", PASSWORD)
    assert admin is not None
    names, judged = room.read(profile_views.zone_choice, "a-cold")
    assert judged == ["2-8C", "humidity"] and "15-25C" in names
    reason = "requalified for CRT, CC-0120"
    now = room.act(admin, reason, profile_views.assign, "a-cold", ["15-25C"])
    assert now == ["15-25C"]
    assert "requalified for CRT, CC-0120" in reasons(plant, "zone_profiles")


def test_limits_on_a_zone_judged_by_a_custom_temperature_profile_are_refused(
    plant: Plant, pg_url: str
) -> None:
    admin = logged_in(plant, pg_url, "admin.ada")
    body = {
        "name": "vaccine-3-5",
        "limits": [
            {"level": "alarm", "kind": "high", "limit": 5, "delay_min": 30},
            {"level": "alarm", "kind": "low", "limit": 3, "delay_min": 30},
        ],
        "reason": "vaccine SOP-12",
    }
    assert admin.post("/api/profiles", json=body).status_code == 201
    put = {"profiles": ["vaccine-3-5", "humidity"], "reason": "vaccines only"}
    assert admin.put("/api/zones/a-cold/profiles", json=put).status_code == 200
    refused = admin.patch("/api/zones/a-cold", json={"high": 9.0, "reason": "wider"})
    assert refused.status_code == 409 and "vaccine-3-5" in refused.json["detail"]
    shown = admin.get("/api/zones/a-cold/profiles").json
    assert shown["own_limits"] == {"low": 2.0, "high": 8.0}
    assert "alarm high > 5 for 30 min" in shown["profiles"][1]["limits"]  # as stored
    renamed = admin.patch("/api/zones/a-cold", json={"name": "Cold room A", "reason": "tidy"})
    assert renamed.status_code == 200
