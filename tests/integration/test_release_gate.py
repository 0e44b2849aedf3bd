"""The release gate on PostgreSQL, through the API's load commands: a refused load is a 409
problem listing every reason that applies, and a load with none goes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cloud.adapters.orm.alerting import Recall, SiteApproval
from cloud.adapters.orm.people import User
from cloud.adapters.orm.quality import Excursion
from cloud.adapters.orm.traceability import Batch, OrderLine
from cloud.service_layer.release_gate import gate_reasons
from tests.integration.api_support import (
    GTIN,
    Api,
    at,
    epc,
    release_for_shipment,
    running_api,
)

pytestmark = pytest.mark.integration
GS = "\x1d"


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        yield running


def scan(api: Api, serial: int, minutes: float) -> None:
    data = f"]d201{GTIN}17270630" + f"10L1{GS}21{serial}"
    body = {"data": data, "read_point_id": "a-cold-door", "scanned_at": at(minutes).isoformat()}
    assert api.client.post("/api/scans", json=body, headers=api.as_("operator")).status_code == 201


def open_excursion(api: Api, zone: str = "a-cold", **changes: Any) -> Excursion:
    values: dict[str, Any] = {
        "zone_id": zone,
        "profile_id": "2-8C",
        "rule": "alarm high",
        "kind": "high",
        "level": "alarm",
        "started_at": at(5),
        "state": "open",
        "detected_at": at(6),
    }
    values.update(changes)
    excursion = Excursion(**values)
    api.db.add(excursion)
    api.db.commit()
    return excursion


def transfer_plan(ident: str, item: str, when: datetime) -> dict[str, Any]:
    """A transfer from warehouse A to warehouse B."""
    return {
        "id": ident,
        "origin_site_id": "wh-a",
        "destination_site_id": "wh-b",
        "items": [item],
        "at": when.isoformat(),
    }


def l1(api: Api) -> Batch:
    return api.db.scalars(select(Batch).where(Batch.lot == "L1")).one()


def test_a_shipment_load_is_refused_with_every_reason(api: Api) -> None:
    c, op = api.client, api.as_("operator")
    scan(api, 3, 0)
    picked = {"id": "SH-1", "order_id": "PO-77", "items": [epc(3)], "at": at(1).isoformat()}
    assert c.post("/api/shipments", json=picked, headers=op).status_code == 201
    # Then everything goes wrong at once.
    db = api.db
    db.info.update(actor="test-setup", reason="gate test")
    batch = l1(api)
    batch.status, batch.expires_on = "held", (at(10) - timedelta(days=1)).date()
    qa = db.scalars(select(User).where(User.username == "qa")).one()
    db.add(
        Recall(
            batch_id=batch.id,
            reason="supplier notice",
            state="open",
            opened_at=at(2),
            opened_by=qa.id,
            previous_status="available",
        )
    )
    db.add(OrderLine(order_id="PO-77", gtin=GTIN, quantity=1, min_shelf_life_days=90))
    db.add(SiteApproval(site_id="st-marys", temperature_class="15-25C"))
    db.commit()
    excursion = open_excursion(api)

    load = {"truck_zone_id": "t7-reefer", "at": at(10).isoformat()}
    refused = c.post("/api/shipments/SH-1/load", json=load, headers=op)
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    body = refused.get_json()
    assert body["type"] == "urn:coldchain:problem:release-blocked"
    assert {(r["code"], r["subject"]) for r in body["reasons"]} == {
        ("expired", "L1"),
        ("held", "L1"),
        ("recalled", "L1"),
        ("shelf_life", "L1"),
        ("open_excursion", "a-cold"),
        ("destination", "L1"),
        ("shipping_release", "L1"),  # and QA has not released the 2-8C batch for shipment
    }
    details = " ".join(r["detail"] for r in body["reasons"])
    assert f"open high excursion ({excursion.id})" in details
    assert "site st-marys is not approved for 2-8C products" in details
    assert "the order needs 90" in details
    shipment = c.get("/api/shipments/SH-1", headers=op).get_json()
    assert shipment["state"] == "picked"  # nothing moved

    # Put every cause right: the same load goes.
    db.info["reason"] = "gate test: causes removed"
    batch.status, batch.expires_on = "available", at(0).date() + timedelta(days=365)
    for recall in db.scalars(select(Recall)):
        recall.state = "closed"
    excursion.state, excursion.ended_at = "closed", at(8)
    db.add(SiteApproval(site_id="st-marys", temperature_class="2-8C"))
    db.commit()
    release_for_shipment(api, "shipment", "SH-1", 9)
    loaded = c.post("/api/shipments/SH-1/load", json=load, headers=op)
    assert loaded.status_code == 200, loaded.get_json()
    assert loaded.get_json()["state"] == "loaded"


def test_a_transfer_load_leaving_a_zone_in_excursion(api: Api) -> None:
    c, op = api.client, api.as_("operator")
    scan(api, 1, 0)
    plan = transfer_plan("TR-1", epc(1), at(1))
    assert c.post("/api/transfers", json=plan, headers=op).status_code == 201
    open_excursion(api, suppressed_reason="receiving: door open within its grace period")
    release_for_shipment(api, "transfer", "TR-1", 5)
    load = {"items": [epc(1)], "truck_zone_id": "t7-reefer", "at": at(10).isoformat()}
    # A suppressed excursion is recorded, not a reason to stop the truck.
    assert c.post("/api/transfers/TR-1/load", json=load, headers=op).status_code == 200
    scan(api, 2, 11)
    open_excursion(api, kind="low", started_at=at(12))
    c.post(
        "/api/transfers",
        json={**plan, "id": "TR-2", "items": [epc(2)], "at": at(13).isoformat()},
        headers=op,
    )
    release_for_shipment(api, "transfer", "TR-2", 13)
    refused = c.post(
        "/api/transfers/TR-2/load",
        json={**load, "items": [epc(2)], "at": at(14).isoformat()},
        headers=op,
    )
    assert refused.status_code == 409
    assert [r["code"] for r in refused.get_json()["reasons"]] == ["open_excursion"]


def test_gate_reasons_and_the_check_route(api: Api) -> None:
    batch = l1(api)
    assert gate_reasons(api.db, [batch.id], "a-cold", "wh-b", at=at(0)) == []
    api.db.info["actor"] = "test-setup"
    api.db.add(SiteApproval(site_id="wh-b", temperature_class="frozen"))
    api.db.commit()
    reasons = gate_reasons(api.db, [batch.id], None, "wh-b", at=at(0))
    assert [r.code for r in reasons] == ["destination"]
    held = api.db.scalars(select(Batch).where(Batch.lot == "L2")).one()
    checked = api.client.post(
        "/api/release-gate/check",
        json={"batch_ids": [batch.id, held.id], "destination_site_id": "wh-b"},
        headers=api.as_("viewer"),
    ).get_json()
    assert checked["may_load"] is False
    assert sorted((r["code"], r["subject"]) for r in checked["reasons"]) == [
        ("destination", "L1"),
        ("destination", "L2"),
        ("held", "L2"),
    ]
    approvals = api.client.put(
        "/api/sites/wh-b/approvals",
        json={"temperature_classes": ["2-8C", "frozen"]},
        headers=api.as_("admin"),
    )
    assert approvals.get_json()["temperature_classes"] == ["2-8C", "frozen"]
    assert gate_reasons(api.db, [batch.id], None, "wh-b", at=at(0)) == []
    bad = api.client.put(
        "/api/sites/wh-b/approvals",
        json={"temperature_classes": ["lukewarm"]},
        headers=api.as_("admin"),
    )
    assert bad.status_code == 422


def test_a_plan_or_a_pick_is_refused_with_every_reason_but_the_zone_it_leaves(api: Api) -> None:
    """Planning a transfer and picking a shipment ask the same gate as loading (the zone the
    items leave is judged at loading): a destination not approved, an order's shelf life,
    a batch its site's midnight expired though the UTC date has not turned yet."""
    c, op = api.client, api.as_("operator")
    scan(api, 1, 0)
    db = api.db
    db.info.update(actor="test-setup", reason="gate test")
    db.add(SiteApproval(site_id="wh-b", temperature_class="frozen"))
    db.add(OrderLine(order_id="PO-77", gtin=GTIN, quantity=1, min_shelf_life_days=5000))
    db.commit()
    open_excursion(api)  # in a-cold, where the items are: not a reason yet
    plan = transfer_plan("TR-1", epc(1), at(1))
    refused = problem_of(c.post("/api/transfers", json=plan, headers=op))
    assert [(r["code"], r["subject"]) for r in refused["reasons"]] == [("destination", "L1")]
    assert refused["detail"].startswith("transfer plan refused: site wh-b is not approved")
    pick = {"id": "SH-1", "order_id": "PO-77", "items": [epc(1)], "at": at(1).isoformat()}
    refused = problem_of(c.post("/api/shipments", json=pick, headers=op))
    assert [(r["code"], r["subject"]) for r in refused["reasons"]] == [("shelf_life", "L1")]
    batch = l1(api)
    batch.status = "expired"  # as the scheduler marks it at the site's midnight
    db.commit()
    refused = problem_of(
        c.post("/api/transfers", json={**plan, "destination_site_id": "wh-a"}, headers=op)
    )
    assert [(r["code"], r["subject"]) for r in refused["reasons"]] == [("expired", "L1")]
    assert c.get("/api/transfers/TR-1", headers=op).status_code == 404  # nothing was planned


def problem_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 409 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "urn:coldchain:problem:release-blocked"
    return body
