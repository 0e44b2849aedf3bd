"""The REST API against a real PostgreSQL: sessions and tokens, custody questions, scans,
transfer and shipment lifecycles, manual holds, problem details, pagination, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from cloud.adapters.orm.audit import AuditEntry
from cloud.adapters.orm.people import ApiToken
from cloud.adapters.orm.traceability import Batch, TransferStateChange
from cloud.entrypoints.api.contract import PUBLIC, endpoint
from cloud.entrypoints.api.openapi import openapi_path
from tests.integration.api_support import (
    GTIN,
    PASSWORD,
    Api,
    at,
    epc,
    release_for_shipment,
    running_api,
)

pytestmark = pytest.mark.integration
GS = "\x1d"
PROBLEM = "application/problem+json"


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        yield running


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["type"] and body["instance"]
    return body


def scan_of(serial: int) -> str:
    return f"]d201{GTIN}17270630" + f"10L1{GS}21{serial}"


# --- authentication -----------------------------------------------------------------------


def test_a_person_logs_in_with_a_session_cookie_and_out_again(api: Api) -> None:
    c = api.app.test_client()  # one that keeps the cookie it is given
    assert problem(c.get("/api/session"), 401)
    refused = c.post("/api/session", json={"username": "qa", "password": "wrong password"})
    assert problem(refused, 401)["detail"].startswith("wrong username or password")
    ok = c.post("/api/session", json={"username": "qa", "password": PASSWORD})
    assert ok.status_code == 200 and ok.json["role"] == "qa"
    assert "HttpOnly" in ok.headers["Set-Cookie"]
    assert c.get("/api/session").json == {
        "username": "qa",
        "full_name": "Qa User",
        "kind": "person",
        "role": "qa",
        "pending_role": None,
        "acts_as": "qa",
        "active": True,
        "via": "session",
        "must_change_password": False,
    }
    assert c.get("/api/batches").status_code == 200
    assert c.delete("/api/session").status_code == 204
    assert problem(c.get("/api/batches"), 401)


def test_bearer_tokens_are_stored_hashed_and_can_be_revoked(api: Api) -> None:
    c = api.client
    assert problem(c.get("/api/items", headers={"Authorization": "Bearer nope"}), 401)
    assert problem(c.get("/api/items", headers={"Authorization": "Basic eDp5"}), 401)
    made = c.post(
        "/api/tokens",
        json={"username": "scanner", "name": "dock scanner 4", "scopes": ["scans"], "days": 30},
        headers=api.as_("admin"),
    )
    assert made.status_code == 201
    secret, token_id = made.json["token"], made.json["id"]
    assert (made.json["scopes"], made.json["issued_by"]) == (["scans"], "admin")
    stored = api.db.scalars(select(ApiToken.token_hash)).all()
    assert all(secret not in h for h in stored) and len(stored) == 3
    scanner = {"Authorization": f"Bearer {secret}"}
    assert c.post("/api/scans", json={}, headers=scanner).status_code == 422  # let through
    listed = c.get("/api/tokens", headers=api.as_("admin")).json["items"]
    assert "token" not in listed[-1] and listed[-1]["name"] == "dock scanner 4"
    # Revoking is an audited update: no reason, no revocation.
    body = problem(c.delete(f"/api/tokens/{token_id}", headers=api.as_("admin")), 422)
    assert body["errors"] == [
        {"field": "reason", "message": "give a reason (body field or X-Reason)"}
    ]
    assert c.post("/api/scans", json={}, headers=scanner).status_code == 422
    gone = c.delete(
        f"/api/tokens/{token_id}", headers={**api.as_("admin"), "X-Reason": "scanner lost"}
    )
    assert gone.status_code == 204
    assert problem(c.post("/api/scans", json={}, headers=scanner), 401)
    entry = api.db.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None
    assert (entry.actor, entry.action, entry.reason) == ("admin", "update", "scanner lost")
    assert entry.new_values is not None and "token_hash" not in entry.new_values


def test_changing_a_user_needs_a_reason_and_records_the_actor(api: Api) -> None:
    c, admin = api.client, api.as_("admin")
    new = {
        "username": "j.smith",
        "full_name": "Jane Smith",
        "role": "viewer",
        "password": "chilled-vials-07",
    }
    assert c.post("/api/users", json=new, headers=admin).status_code == 201
    assert problem(c.post("/api/users", json=new, headers=admin), 409)
    short = problem(c.post("/api/users", json={**new, "password": "short"}, headers=admin), 422)
    assert [e["field"] for e in short["errors"]] == ["password"]
    assert problem(c.patch("/api/users/j.smith", json={"role": "qa"}, headers=admin), 422)
    changed = c.patch(
        "/api/users/j.smith", json={"role": "qa", "reason": "moved to QA"}, headers=admin
    )
    assert changed.status_code == 200
    assert (changed.json["role"], changed.json["pending_role"]) == ("viewer", "qa")
    entry = api.db.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None
    assert (entry.actor, entry.reason) == ("admin", "moved to QA")
    assert entry.new_values is not None and entry.new_values["pending_role"] == "qa"
    assert problem(c.patch("/api/users/nobody", json={"role": "qa"}, headers=admin), 404)


# --- master data, problems, pagination ---------------------------------------------------


def test_products_are_validated_field_by_field(api: Api) -> None:
    c, admin = api.client, api.as_("admin")
    bad = c.post(
        "/api/products",
        json={"gtin": "09506000134353", "name": "", "low": 8, "high": 2, "colour": "blue"},
        headers=admin,
    )
    body = problem(bad, 422)
    assert body["type"] == "urn:coldchain:problem:validation"
    assert {e["field"] for e in body["errors"]} == {"gtin", "name", "colour"}
    assert "check digit should be 2" in body["errors"][0]["message"]
    good = {"gtin": "04001234567891", "name": "Insulin pen", "low": 2, "high": 8}
    made = c.post("/api/products", json=good, headers=admin)
    assert made.status_code == 201 and made.json["freeze_sensitive"] is False
    assert problem(c.post("/api/products", json=good, headers=admin), 409)
    assert problem(c.get("/api/products/00000000000000", headers=admin), 404)
    changed = c.patch("/api/products/04001234567891", json={"high": 1}, headers=admin)
    assert problem(changed, 422)["detail"] == "low 2.0 is not below high 1.0"


def test_malformed_requests_are_problems(api: Api) -> None:
    c, admin = api.client, api.as_("admin")
    raw = c.post(
        "/api/products", data="{not json", headers={**admin, "Content-Type": "application/json"}
    )
    assert problem(raw, 400)
    assert problem(c.post("/api/products", data="gtin=1", headers=admin), 415)
    typo = problem(c.get("/api/batches?stauts=held", headers=admin), 400)
    assert typo["errors"] == [{"field": "stauts", "message": "Extra inputs are not permitted"}]
    assert problem(c.get("/api/items?limit=0", headers=admin), 400)["errors"][0]["field"] == "limit"
    assert problem(c.get("/api/nowhere", headers=admin), 404)
    assert problem(c.put("/api/products", headers=admin), 405)


def test_an_unexpected_error_is_a_500_problem_without_internals(api: Api) -> None:
    def explode() -> None:
        """Fails."""
        raise RuntimeError("secret internals")

    api.app.add_url_rule("/api/explode", view_func=endpoint(PUBLIC)(explode))
    body = problem(api.client.get("/api/explode"), 500)
    assert "secret" not in body["detail"]


def test_lists_are_paged_with_a_next_link(api: Api) -> None:
    c, viewer = api.client, api.as_("viewer")
    first = c.get("/api/items?limit=3", headers=viewer)
    assert [i["serial"] for i in first.json["items"]] == ["1", "2", "3"]
    assert first.json["next"] == "/api/items?limit=3&offset=3"
    assert first.headers["Link"] == '</api/items?limit=3&offset=3>; rel="next"'
    second = c.get(first.json["next"], headers=viewer)
    assert [i["serial"] for i in second.json["items"]] == ["9"]
    assert second.json["next"] is None and "Link" not in second.headers
    held = c.get("/api/batches?status=held", headers=viewer).json["items"]
    assert [b["lot"] for b in held] == ["L2"]


# --- custody: scans and the questions asked of it ----------------------------------------


def test_a_scan_places_the_item_and_custody_answers_where_it_is(api: Api) -> None:
    c, operator, viewer = api.client, api.as_("operator"), api.as_("viewer")
    scanned = c.post(
        "/api/scans",
        json={"data": scan_of(1), "read_point_id": "a-cold-door", "scanned_at": at(0).isoformat()},
        headers=operator,
    )
    assert scanned.status_code == 201, scanned.json
    assert (scanned.json["gtin"], scanned.json["serial"], scanned.json["lot"]) == (GTIN, "1", "L1")
    assert scanned.json["actor"] == "operator" and scanned.json["items_placed"] == 1
    for ref in (epc(1), epc(1).lower(), f"(01){GTIN}(21)1", f"{GTIN}+1"):
        now = c.get(f"/api/items/{ref}/custody/current", headers=viewer)
        assert now.status_code == 200, ref
        assert now.json["custody"]["zone_id"] == "a-cold"
        assert now.json["custody"]["started_at"] == "2026-03-02T06:00:00+00:00"
    nowhere = c.get(f"/api/items/{GTIN}+2/custody/current", headers=viewer)
    assert nowhere.json["custody"] is None
    assert problem(c.get(f"/api/items/{GTIN}+77/custody/current", headers=viewer), 404)
    assert problem(c.get("/api/items/not-an-item/custody/current", headers=viewer), 400)
    in_zone = c.get("/api/zones/a-cold/items", headers=viewer).json["items"]
    assert [i["serial"] for i in in_zone] == ["1"]
    assert problem(c.get("/api/zones/nowhere/items", headers=viewer), 404)
    listed = c.get("/api/scans?from=2026-03-02T05:00:00Z&read_point_id=a-cold-door", headers=viewer)
    assert [s["serial"] for s in listed.json["items"]] == ["1"]


def test_scans_that_name_nothing_or_nowhere_are_refused(api: Api) -> None:
    c, operator = api.client, api.as_("operator")
    lot_only = c.post(
        "/api/scans",
        json={"data": f"]d201{GTIN}10L1", "read_point_id": "a-cold-door"},
        headers=operator,
    )
    assert problem(lot_only, 422)["errors"][0]["field"] == "data"
    garbage = c.post(
        "/api/scans", json={"data": "hello", "read_point_id": "a-cold-door"}, headers=operator
    )
    assert problem(garbage, 422)["errors"][0]["field"] == "data"
    nowhere = c.post(
        "/api/scans", json={"data": scan_of(1), "read_point_id": "x"}, headers=operator
    )
    assert problem(nowhere, 422)["errors"][0]["field"] == "read_point_id"
    naive = c.post(
        "/api/scans",
        json={"data": scan_of(1), "read_point_id": "a-cold-door", "scanned_at": "2026-03-02T06:00"},
        headers=operator,
    )
    assert problem(naive, 422)["errors"][0]["field"] == "scanned_at"


def test_what_was_in_a_zone_between_two_times(api: Api) -> None:
    c, operator, viewer = api.client, api.as_("operator"), api.as_("viewer")
    for serial, minute, door in (
        (1, 0, "a-cold-door"),
        (2, 30, "a-cold-door"),
        (1, 60, "b-cold-door"),
    ):
        body = {
            "data": scan_of(serial),
            "read_point_id": door,
            "scanned_at": at(minute).isoformat(),
        }
        assert c.post("/api/scans", json=body, headers=operator).status_code == 201
    early = c.get(
        "/api/zones/a-cold/custody?from=2026-03-02T06:00:00Z&to=2026-03-02T06:10:00Z",
        headers=viewer,
    ).json["items"]
    assert [(i["item_id"], i["ended_at"]) for i in early] == [(1, "2026-03-02T07:00:00+00:00")]
    # An offset written with an unencoded "+" still reads as an offset.
    late = c.get(
        "/api/zones/a-cold/custody?from=2026-03-02T07:20:00+01:00&to=2026-03-02T07:40:00+01:00",
        headers=viewer,
    ).json["items"]
    assert [(i["item_id"], i["ended_at"]) for i in late] == [
        (1, "2026-03-02T07:00:00+00:00"),
        (2, None),
    ]
    missing = problem(
        c.get("/api/zones/a-cold/custody?from=2026-03-02T06:00:00Z", headers=viewer), 400
    )
    assert [e["field"] for e in missing["errors"]] == ["to"]
    backwards = c.get(
        "/api/zones/a-cold/custody?from=2026-03-03T00:00:00Z&to=2026-03-02T00:00:00Z",
        headers=viewer,
    )
    assert problem(backwards, 400)


# --- transfers, shipments, QA ------------------------------------------------------------


def test_a_transfer_runs_its_lifecycle_and_moves_custody(api: Api) -> None:
    c, op, viewer = api.client, api.as_("operator"), api.as_("viewer")
    plan = {
        "id": "TR-1",
        "origin_site_id": "wh-a",
        "destination_site_id": "wh-b",
        "items": [epc(1), epc(2)],
        "at": at(0).isoformat(),
    }
    made = c.post("/api/transfers", json=plan, headers=op)
    assert made.status_code == 201 and made.json["state"] == "planned"
    assert problem(c.post("/api/transfers", json=plan, headers=op), 422)
    early = problem(c.post("/api/transfers/TR-1/depart", headers=op), 409)
    assert early["type"] == "urn:coldchain:problem:illegal-transition"
    assert early["state"] == "planned" and "cannot depart" in early["detail"]
    release_for_shipment(api, "transfer", "TR-1", 5)
    not_truck = {"items": [epc(1)], "truck_zone_id": "a-cold", "at": at(10).isoformat()}
    assert (
        "not a truck"
        in problem(c.post("/api/transfers/TR-1/load", json=not_truck, headers=op), 422)["detail"]
    )
    load = {"items": [epc(1), epc(2)], "truck_zone_id": "t7-reefer", "at": at(10).isoformat()}
    assert c.post("/api/transfers/TR-1/load", json=load, headers=op).json["state"] == "loaded"
    departed = c.post("/api/transfers/TR-1/depart", json={"at": at(20).isoformat()}, headers=op)
    assert departed.json["state"] == "in_transit"
    on_truck = c.get(f"/api/items/{epc(1)}/custody/current", headers=viewer).json["custody"]
    assert on_truck["zone_id"] == "t7-reefer"
    receive = {"items": [epc(1)], "zone_id": "b-cold", "at": at(300).isoformat()}
    received = c.post("/api/transfers/TR-1/receive", json=receive, headers=op)
    assert received.json["state"] == "received"
    assert [(i["epc"], i["discrepancy"]) for i in received.json["items"]] == [
        (epc(1), None),
        (epc(2), "missing"),
    ]
    assert [h["state"] for h in received.json["history"]] == [
        "planned",
        "loaded",
        "in_transit",
        "received",
    ]
    assert set(api.db.scalars(select(TransferStateChange.actor))) == {"operator"}
    assert problem(c.post("/api/transfers/TR-1/receive", json=receive, headers=op), 409)
    now = c.get(f"/api/items/{epc(1)}/custody/current", headers=viewer).json["custody"]
    assert now["zone_id"] == "b-cold"
    path = c.get(f"/api/items/{epc(1)}/custody", headers=viewer).json["items"]
    assert [i["zone_id"] for i in path] == ["t7-reefer", "b-cold"]
    batch_id = api.db.scalars(select(Batch.id).where(Batch.lot == "L1")).one()
    timeline = c.get(f"/api/batches/{batch_id}/custody", headers=viewer).json["items"]
    assert {(i["item_id"], i["zone_id"]) for i in timeline} >= {(1, "t7-reefer"), (1, "b-cold")}
    # After the truck arrived (11:00): one vial received, the missing one still on the truck.
    late = c.get(f"/api/batches/{batch_id}/custody?from=2026-03-02T11:30:00Z", headers=viewer)
    assert [(i["item_id"], i["zone_id"]) for i in late.json["items"]] == [
        (1, "b-cold"),
        (2, "t7-reefer"),
    ]
    listed = c.get("/api/transfers?state=received", headers=viewer).json["items"]
    assert [t["id"] for t in listed] == ["TR-1"]
    assert problem(c.post("/api/transfers/TR-404/depart", headers=op), 404)


def test_a_shipment_is_gated_on_batch_status_and_follows_its_lifecycle(api: Api) -> None:
    c, op = api.client, api.as_("operator")
    held = {"id": "SH-1", "order_id": "PO-77", "items": [epc(3), epc(9)], "at": at(0).isoformat()}
    blocked = problem(c.post("/api/shipments", json=held, headers=op), 409)
    assert blocked["type"] == "urn:coldchain:problem:release-blocked"
    assert [(r["code"], r["subject"]) for r in blocked["reasons"]] == [("held", "L2")]
    assert blocked["detail"] == "pick refused: batch L2 is held"
    unknown_order = {**held, "order_id": "PO-0", "items": [epc(3)]}
    assert problem(c.post("/api/shipments", json=unknown_order, headers=op), 422)
    made = c.post("/api/shipments", json={**held, "items": [epc(3)]}, headers=op)
    assert made.status_code == 201 and made.json["state"] == "picked"
    assert problem(c.post("/api/shipments/SH-1/ship", headers=op), 409)
    release_for_shipment(api, "shipment", "SH-1", 5)
    loaded = c.post(
        "/api/shipments/SH-1/load",
        json={"truck_zone_id": "t7-reefer", "at": at(10).isoformat()},
        headers=op,
    )
    assert loaded.json["state"] == "loaded" and loaded.json["items"][0]["loaded_at"]
    assert (
        c.post("/api/shipments/SH-1/ship", json={"at": at(20).isoformat()}, headers=op).json[
            "state"
        ]
        == "shipped"
    )
    delivered = c.post(
        "/api/shipments/SH-1/deliver",
        json={"zone_id": "sm-pharmacy", "at": at(90).isoformat()},
        headers=op,
    )
    assert delivered.json["state"] == "delivered"
    where = c.get(f"/api/items/{epc(3)}/custody/current", headers=op).json["custody"]
    assert where["zone_id"] == "sm-pharmacy"
    again = c.post("/api/shipments/SH-1/deliver", json={"zone_id": "sm-pharmacy"}, headers=op)
    assert problem(again, 409)["state"] == "delivered"


def test_qa_puts_a_batch_on_hold_and_the_rest_follows_the_hold(api: Api) -> None:
    """The status route opens a manual hold; release, rejection and recall are refused there
    (409) with the workflow to use, and the hold's signed disposition releases the batch."""
    c, qa = api.client, api.as_("qa")
    batch_id = api.db.scalars(select(Batch.id).where(Batch.lot == "L1")).one()
    url = f"/api/batches/{batch_id}/status"
    no_reason = problem(c.post(url, json={"status": "held"}, headers=qa), 422)
    assert [e["field"] for e in no_reason["errors"]] == ["reason"]
    assert problem(c.post(url, json={"status": "lost", "reason": "x"}, headers=qa), 422)
    assert problem(
        c.post(url, json={"status": "held", "reason": "x"}, headers=api.as_("operator")), 403
    )
    held = c.post(url, json={"status": "held", "reason": "pallet dropped"}, headers=qa)
    assert held.status_code == 200 and held.json["status"] == "held"
    hold_id = held.json["hold_id"]
    hold = c.get(f"/api/holds/{hold_id}", headers=qa).json
    assert (hold["status"], hold["reason"]) == ("open", "manual hold: pallet dropped")
    again = problem(c.post(url, json={"status": "held", "reason": "again"}, headers=qa), 409)
    assert again["hold_id"] == hold_id
    release = {"status": "available", "reason": "assessed"}
    refused = problem(c.post(url, json=release, headers=qa), 409)
    assert refused["type"].endswith("workflow-required") and refused["hold_id"] == hold_id
    assert f"POST /api/holds/{hold_id}/disposition" in refused["detail"]
    decided = c.post(
        f"/api/holds/{hold_id}/disposition",
        json={"decision": "release", "reason": "assessed", "password": PASSWORD, "username": "qa"},
        headers=qa,
    )
    assert decided.status_code == 200 and decided.json["status"] == "released"
    api.db.expire_all()
    assert api.db.get(Batch, batch_id).status == "available"
    rejected = problem(c.post(url, json={"status": "rejected", "reason": "x"}, headers=qa), 409)
    assert "put the batch on hold" in rejected["detail"]
    changes = api.db.scalars(
        select(AuditEntry)
        .where(AuditEntry.record_table == "batches", AuditEntry.record_key == str(batch_id))
        .order_by(AuditEntry.id)
    ).all()
    assert [(e.actor, e.reason, e.new_values) for e in changes[1:]] == [
        ("qa", "pallet dropped", {"status": "held"}),
        ("qa", "assessed", {"status": "available"}),
    ]


def test_lifecycle_steps_land_in_the_audit_trail(api: Api) -> None:
    c, op = api.client, api.as_("operator")
    plan = {"id": "TR-9", "origin_site_id": "wh-a", "destination_site_id": "wh-b"}
    made = c.post(
        "/api/transfers", json={**plan, "items": [epc(1)], "at": at(0).isoformat()}, headers=op
    )
    assert made.status_code == 201
    release_for_shipment(api, "transfer", "TR-9", 5)
    load = {"items": [epc(1)], "truck_zone_id": "t7-reefer", "at": at(10).isoformat()}
    assert c.post("/api/transfers/TR-9/load", json=load, headers=op).status_code == 200
    given = {"reason": "driver early", "at": at(30).isoformat()}
    assert c.post("/api/transfers/TR-9/depart", json=given, headers=op).status_code == 200
    trail = api.db.scalars(
        select(AuditEntry).where(AuditEntry.record_table == "transfers").order_by(AuditEntry.id)
    ).all()
    assert [(e.action, e.actor, e.reason, (e.new_values or {}).get("state")) for e in trail] == [
        ("create", "operator", None, "planned"),
        ("update", "operator", "transfer TR-9: load", "loaded"),
        ("update", "operator", "driver early", "in_transit"),
    ]
    product = {"name": "renamed vial"}
    refused = problem(c.patch(f"/api/products/{GTIN}", json=product, headers=api.as_("admin")), 422)
    assert refused["type"].endswith("reason-required")
    changed = c.patch(
        f"/api/products/{GTIN}", json={**product, "reason": "label"}, headers=api.as_("admin")
    )
    assert changed.status_code == 200
    entry = api.db.scalars(
        select(AuditEntry)
        .where(AuditEntry.record_table == "products")
        .order_by(AuditEntry.id.desc())
    ).first()
    assert entry is not None and (entry.actor, entry.reason) == ("admin", "label")
    assert entry.old_values == {"name": "mRNA vaccine vial"}


# --- OpenAPI ------------------------------------------------------------------------------


def test_the_openapi_document_covers_exactly_the_routes(api: Api) -> None:
    doc = api.client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.")
    rules = {
        (openapi_path(r.rule), m.lower())
        for r in api.app.url_map.iter_rules()
        if r.rule.startswith("/api")
        for m in (r.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert rules == documented
    load = doc["paths"]["/api/transfers/{ident}/load"]["post"]
    assert load["x-action"] == "movements" and load["x-roles"] == ["operator", "qa"]
    assert load["x-token-scope"] == "movements"
    assert load["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Load")
    assert "truck_zone_id" in doc["components"]["schemas"]["Load"]["properties"]
    window = doc["paths"]["/api/zones/{zone_id}/custody"]["get"]["parameters"]
    assert {p["name"] for p in window if p["in"] == "query"} == {"from", "to", "limit", "offset"}
    assert doc["paths"]["/api/openapi.json"]["get"]["security"] == []
    kinds = doc["paths"]["/api/import/{kind}"]["post"]["parameters"][0]["schema"]["enum"]
    assert kinds == ["products", "batches", "items"]
