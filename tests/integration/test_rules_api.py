"""The rules through the REST API: excursions and exposures read by a viewer, a hold
dispositioned by QA with a signature, refused without one or for a viewer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cloud.api import create_app
from cloud.api.database import EXTENSION
from tests.integration.test_rules import PASSWORD, Plant

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
    wrong = qa.post(
        f"/api/holds/{hold['id']}/disposition",
        json={"decision": "release", "reason": "fine", "password": "not my password"},
    )
    assert wrong.status_code == 403 and wrong.json["type"].endswith("signature-refused")
    released = qa.post(
        f"/api/holds/{hold['id']}/disposition",
        json={"decision": "release", "reason": "stability data SD-12", "password": PASSWORD},
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
