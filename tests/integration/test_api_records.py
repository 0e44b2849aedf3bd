"""Sites, zones, customers and orders over REST against PostgreSQL: create, read, list with
filters, change; references and values checked with the field named; zone limit changes
are audited with their reason; an order's lines are fixed once something is shipped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from cloud.adapters.orm.audit import AuditEntry
from cloud.adapters.orm.traceability import OrderLine
from tests.integration.api_support import GTIN, Api, at, epc, running_api

pytestmark = pytest.mark.integration


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        yield running


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.get_json(force=True)


def test_sites_and_zones_are_registered_listed_and_changed(api: Api) -> None:
    c, admin, viewer = api.client, api.as_("admin"), api.as_("viewer")
    site = {"id": "wh-c", "name": "Warehouse C", "kind": "warehouse", "timezone": "Europe/Berlin"}
    made = c.post("/api/sites", json=site, headers=admin)
    assert made.status_code == 201 and made.json == site
    assert problem(c.post("/api/sites", json=site, headers=admin), 409)["detail"] == (
        "site wh-c exists already"
    )
    bad = problem(
        c.post("/api/sites", json={**site, "id": "x", "timezone": "Mars/Base"}, headers=admin), 422
    )
    assert [e["field"] for e in bad["errors"]] == ["timezone"]
    trucks = c.get("/api/sites?kind=truck", headers=viewer).json["items"]
    assert [s["id"] for s in trucks] == ["truck-7"]
    renamed = c.patch("/api/sites/wh-c", json={"name": "Warehouse C (north)"}, headers=admin)
    assert renamed.json["name"] == "Warehouse C (north)" and renamed.json["kind"] == "warehouse"
    assert c.get("/api/sites/wh-c", headers=viewer).json["timezone"] == "Europe/Berlin"
    assert problem(c.get("/api/sites/nowhere", headers=viewer), 404)

    zone = {
        "id": "c-freezer",
        "site_id": "wh-c",
        "name": "Freezer",
        "kind": "freezer",
        "low": -25,
        "high": -15,
    }
    assert c.post("/api/zones", json=zone, headers=admin).status_code == 201
    orphan = problem(
        c.post("/api/zones", json={**zone, "id": "z2", "site_id": "wh-x"}, headers=admin), 422
    )
    assert orphan["detail"] == "site_id: site wh-x does not exist"
    upside = problem(
        c.post("/api/zones", json={**zone, "id": "z3", "low": 8, "high": 2}, headers=admin), 422
    )
    assert "low 8.0 is not below high 2.0" in upside["errors"][0]["message"]
    listed = c.get("/api/zones?site_id=wh-c", headers=viewer).json["items"]
    assert [(z["id"], z["low"], z["high"]) for z in listed] == [("c-freezer", -25.0, -15.0)]
    unexplained = problem(c.patch("/api/zones/c-freezer", json={"high": -18}, headers=admin), 422)
    assert unexplained["type"].endswith("reason-required")
    crossed = c.patch("/api/zones/c-freezer", json={"low": -10, "reason": "x"}, headers=admin)
    assert problem(crossed, 422)["detail"] == "low -10.0 is not below high -15.0"
    changed = c.patch(
        "/api/zones/c-freezer", json={"high": -18, "reason": "SOP-12 rev 3"}, headers=admin
    )
    assert changed.status_code == 200 and changed.json["high"] == -18.0
    entry = api.db.scalars(
        select(AuditEntry)
        .where(AuditEntry.record_table == "zones", AuditEntry.record_key == "c-freezer")
        .order_by(AuditEntry.id.desc())
    ).first()
    assert entry is not None
    assert (entry.actor, entry.reason, entry.old_values, entry.new_values) == (
        "admin",
        "SOP-12 rev 3",
        {"high": -15.0},
        {"high": -18.0},
    )


def test_customers_name_their_delivery_site(api: Api) -> None:
    c, admin = api.client, api.as_("admin")
    customer = {
        "id": "city-clinic",
        "name": "City Clinic",
        "gln": "4012345000009",
        "site_id": "st-marys",
    }
    assert c.post("/api/customers", json=customer, headers=admin).status_code == 201
    bad_gln = problem(
        c.post("/api/customers", json={**customer, "id": "x", "gln": "12"}, headers=admin), 422
    )
    assert [e["field"] for e in bad_gln["errors"]] == ["gln"]
    nowhere = problem(
        c.patch("/api/customers/city-clinic", json={"site_id": "nowhere"}, headers=admin), 422
    )
    assert nowhere["type"].endswith("unknown-reference")
    moved = c.patch("/api/customers/city-clinic", json={"name": "City Clinic Ltd"}, headers=admin)
    assert moved.json == {**customer, "name": "City Clinic Ltd"}
    ids = [x["id"] for x in c.get("/api/customers", headers=api.as_("viewer")).json["items"]]
    assert ids == ["city-clinic", "st-marys"]


def test_orders_carry_lines_that_are_fixed_once_shipped(api: Api) -> None:
    c, op, viewer = api.client, api.as_("operator"), api.as_("viewer")
    order = {
        "id": "PO-88",
        "customer_id": "st-marys",
        "placed_at": at(0).isoformat(),
        "deliver_by": "2026-03-09",
        "lines": [{"gtin": GTIN, "quantity": 2, "min_shelf_life_days": 90}],
    }
    made = c.post("/api/orders", json=order, headers=op)
    assert made.status_code == 201, made.get_data(as_text=True)
    assert made.json["lines"][0] | {"id": 0} == {
        "id": 0,
        "gtin": GTIN,
        "quantity": 2,
        "min_shelf_life_days": 90,
    }
    unknown = {**order, "id": "PO-89", "lines": [{"gtin": "09506000134376", "quantity": 1}]}
    assert problem(c.post("/api/orders", json=unknown, headers=op), 422)["detail"] == (
        "lines[0].gtin: product 09506000134376 does not exist"
    )
    assert (
        api.db.get(OrderLine, 99) is None
        and c.get("/api/orders/PO-89", headers=viewer).status_code == 404
    )
    bad_check = {**order, "id": "PO-90", "lines": [{"gtin": "09506000134353", "quantity": 1}]}
    assert problem(c.post("/api/orders", json=bad_check, headers=op), 422)["errors"][0][
        "field"
    ] == ("lines.0.gtin")
    stranger = {**order, "id": "PO-91", "customer_id": "nobody"}
    assert problem(c.post("/api/orders", json=stranger, headers=op), 422)["type"].endswith(
        "unknown-reference"
    )
    relined = c.patch(
        "/api/orders/PO-88", json={"lines": [{"gtin": GTIN, "quantity": 3}]}, headers=op
    )
    assert [(x["quantity"], x["min_shelf_life_days"]) for x in relined.json["lines"]] == [(3, 0)]
    mine = c.get("/api/orders?customer_id=st-marys", headers=viewer).json["items"]
    assert {o["id"] for o in mine} == {"PO-77", "PO-88"}
    picked = {"id": "SH-1", "order_id": "PO-88", "items": [epc(1)], "at": at(5).isoformat()}
    assert c.post("/api/shipments", json=picked, headers=op).status_code == 201
    fixed = c.patch(
        "/api/orders/PO-88", json={"lines": [{"gtin": GTIN, "quantity": 1}]}, headers=op
    )
    assert "has shipments" in problem(fixed, 409)["detail"]
    later = c.patch("/api/orders/PO-88", json={"deliver_by": "2026-03-12"}, headers=op)
    assert later.json["deliver_by"] == "2026-03-12" and later.json["lines"][0]["quantity"] == 3
