"""The rules through the REST API: excursions and exposures read by a viewer, a hold
dispositioned by QA with a signature, refused without one or for a viewer; a zone's
profiles chosen by an admin and a suppression window added by an operator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cloud.adapters.orm.audit import AuditEntry
from cloud.entrypoints.api import create_app
from cloud.entrypoints.api.database import EXTENSION
from cloud.service_layer.signatures import create_user
from tests.integration.test_rules import PASSWORD, Plant, at

pytestmark = pytest.mark.integration


@pytest.fixture
def plant(pg_url: str) -> Iterator[Plant]:
    p = Plant(pg_url)
    try:
        yield p
    finally:
        p.engine.dispose()


_apps: list[Flask] = []


@pytest.fixture(autouse=True)
def _dispose_app_engines() -> Iterator[None]:
    """Each app's connection pool is closed at the end of its test, not at a later GC."""
    yield
    while _apps:
        _apps.pop().extensions[EXTENSION].kw["bind"].dispose()


def logged_in(plant: Plant, url: str, username: str) -> FlaskClient:
    app = create_app(url, {"TESTING": True})
    _apps.append(app)
    client = app.test_client()
    response = client.post("/api/session", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.json
    return client


def test_excursions_exposures_and_a_signed_release(plant: Plant, pg_url: str) -> None:
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 5 + [-1.0] * 3 + [5.0] * 3))
    viewer = logged_in(plant, pg_url, "view.vic")
    listed = viewer.get("/api/excursions?zone_id=a-cold&kind=freezing").json["items"]
    assert [(e["kind"], e["level"], e["state"]) for e in listed] == [
        ("freezing", "alarm", "closed")
    ]
    detail = viewer.get(f"/api/excursions/{listed[0]['id']}").json
    assert {x["batch_id"] for x in detail["exposures"]} == {plant.sensitive.id, plant.robust.id}
    batch = viewer.get(f"/api/batches/{plant.sensitive.id}/exposures").json
    assert batch["remaining_budget_min"] == pytest.approx(120 - 3)
    assert batch["exposures"][0]["excursion"]["kind"] == "freezing"
    (hold,) = viewer.get("/api/holds?status=open").json["items"]
    assert hold["batch_id"] == plant.sensitive.id
    refused = viewer.post(
        f"/api/holds/{hold['id']}/disposition",
        json={"decision": "release", "reason": "fine", "password": PASSWORD},
    )
    assert refused.status_code == 403

    qa = logged_in(plant, pg_url, "qa.jane")
    unsigned = qa.post(
        f"/api/holds/{hold['id']}/disposition", json={"decision": "release", "reason": "fine"}
    )
    assert unsigned.status_code == 422 and unsigned.json["errors"][0]["field"] == "password"
    # A freezing takes two QA: the review first, the release by somebody else.
    assert hold["two_person_because"] == ["hold reason freezing"]
    early = qa.post(
        f"/api/holds/{hold['id']}/disposition",
        json={"decision": "release", "reason": "fine", "password": PASSWORD, "username": "qa.jane"},
    )
    assert early.status_code == 409 and "nobody has reviewed" in early.json["detail"]
    wrong = qa.post(
        f"/api/holds/{hold['id']}/disposition",
        json={
            "decision": "review",
            "reason": "fine",
            "password": "not my password",
            "username": "qa.jane",
        },
    )
    assert wrong.status_code == 403 and wrong.json["type"].endswith("signature-refused")
    reviewed = qa.post(
        f"/api/holds/{hold['id']}/disposition",
        json={
            "decision": "review",
            "reason": "stability data SD-12",
            "password": PASSWORD,
            "username": "qa.jane",  # nothing signed in this session yet: both components
        },
    )
    assert reviewed.status_code == 200 and reviewed.json["awaiting"] == "approval"
    second = logged_in(plant, pg_url, "qa.kim")
    released = second.post(
        f"/api/holds/{hold['id']}/disposition",
        json={
            "decision": "release",
            "reason": "stability data SD-12",
            "password": PASSWORD,
            "username": "qa.kim",  # the session's first signing: both components
        },
    )
    assert released.status_code == 200, released.json
    assert released.json["status"] == "released" and released.json["signature_id"]
    assert qa.get(f"/api/batches/{plant.sensitive.id}").json["status"] == "available"
    again = qa.post(
        f"/api/holds/{hold['id']}/disposition",
        json={"decision": "reject", "reason": "changed my mind", "password": PASSWORD},
    )
    assert again.status_code == 409
    assert viewer.get("/api/holds/999999").status_code == 404


def test_an_admin_chooses_a_zones_profiles_with_a_reason(plant: Plant, pg_url: str) -> None:
    with plant.session("setup") as s:
        create_user(s, "admin.ada", "Ada Admin", "admin", PASSWORD)
        s.commit()
    viewer = logged_in(plant, pg_url, "view.vic")
    before = viewer.get("/api/zones/a-cold/profiles").json
    assert before["assigned"] is False
    assert [p["name"] for p in before["profiles"]] == ["2-8C", "humidity"]  # a cold room's
    assert "alarm high > 8 for 60 min" in before["profiles"][0]["limits"]
    refused = viewer.put("/api/zones/a-cold/profiles", json={"profiles": ["15-25C"], "reason": "x"})
    assert refused.status_code == 403

    admin = logged_in(plant, pg_url, "admin.ada")
    no_reason = admin.put("/api/zones/a-cold/profiles", json={"profiles": ["15-25C"]})
    assert no_reason.status_code == 422
    unknown = admin.put(
        "/api/zones/a-cold/profiles", json={"profiles": ["9-99C"], "reason": "typo"}
    )
    assert unknown.status_code == 422 and "9-99C" in unknown.json["detail"]
    chosen = admin.put(
        "/api/zones/a-cold/profiles",
        json={"profiles": ["15-25C"], "reason": "room requalified for CRT, CC-0107"},
    )
    assert chosen.status_code == 200, chosen.json
    assert chosen.json["assigned"] is True
    assert [p["name"] for p in chosen.json["profiles"]] == ["15-25C"]
    back = admin.put("/api/zones/a-cold/profiles", json={"profiles": [], "reason": "undo"})
    assert back.json["assigned"] is False and [p["name"] for p in back.json["profiles"]] == [
        "2-8C",
        "humidity",
    ]
    with plant.session() as s:
        reasons = set(
            s.scalars(select(AuditEntry.reason).where(AuditEntry.record_table == "zone_profiles"))
        )
    assert {"room requalified for CRT, CC-0107", "undo"} <= reasons
    assert admin.get("/api/zones/nowhere/profiles").status_code == 404


def test_an_operator_adds_a_suppression_window_and_the_zone_is_re_evaluated(
    plant: Plant, pg_url: str
) -> None:
    # 15 minutes above 8 C from minute 5: the 10-minute warning counts
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 5 + [9.0] * 15 + [5.0] * 3))
    qa = logged_in(plant, pg_url, "qa.jane")
    (warning,) = qa.get("/api/excursions?zone_id=a-cold").json["items"]
    assert warning["rule"] == "warning high > 8 for 10 min" and warning["suppressed_reason"] is None

    viewer = logged_in(plant, pg_url, "view.vic")
    window = {
        "from": at(0).isoformat(),
        "to": at(30).isoformat(),
        "reason": "receiving, door open (GR-2231)",
        "grace_min": 30,
    }
    assert viewer.post("/api/zones/a-cold/suppressions", json=window).status_code == 403
    backwards = qa.post("/api/zones/a-cold/suppressions", json={**window, "to": at(-5).isoformat()})
    assert backwards.status_code == 422
    added = qa.post("/api/zones/a-cold/suppressions", json=window)
    assert added.status_code == 201, added.json
    assert added.json["reason"] == "receiving, door open (GR-2231)"
    assert warning["id"] in added.json["excursions_changed"]
    absorbed = qa.get(f"/api/excursions/{warning['id']}").json
    assert absorbed["suppressed_reason"] == "receiving, door open (GR-2231)"  # recorded
    listed = viewer.get("/api/zones/a-cold/suppressions").json["items"]
    assert [(w["reason"], w["grace_min"]) for w in listed] == [
        ("receiving, door open (GR-2231)", 30.0)
    ]
