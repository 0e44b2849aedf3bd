"""Release signatures on PostgreSQL through the API: a high-risk hold is released by two QA
(review, then approval by somebody else), a standard hold by one; cold goods are loaded only
after QA signed their release for shipment over the batches' temperature evidence."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from cloud.adapters.orm.people import Signature
from cloud.adapters.orm.quality import Excursion, Hold
from cloud.adapters.orm.traceability import Batch, Product, ShippingRelease
from cloud.service_layer.signatures import create_user, record_hash
from tests.integration.api_support import (
    GTIN,
    PASSWORD,
    Api,
    at,
    epc,
    running_api,
    signed_in,
)

pytestmark = pytest.mark.integration
FREEZING = "freezing of a freeze-sensitive product (freezing)"
ALARM = "alarm-level excursion (alarm high)"


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        running.db.info["actor"] = "test-setup"
        create_user(running.db, "qa2", "Robin Second (QA)", "qa", PASSWORD)
        running.db.commit()
        yield running


def held(api: Api, reason: str, lot: str = "L2") -> Hold:
    """An open hold on the batch (held already in the seed data)."""
    db = api.db
    db.info["actor"] = "rules"
    batch = db.scalars(select(Batch).where(Batch.lot == lot)).one()
    db.info["reason"] = "test hold"
    batch.status = "held"
    hold = Hold(batch_id=batch.id, reason=reason, opened_at=at(0), status="open")
    db.add(hold)
    db.commit()
    return hold


def decide(api: Api, who: str, hold: Hold, decision: str, **extra: Any) -> Any:
    body = {
        "decision": decision,
        "reason": f"{decision} by {who}",
        "password": PASSWORD,
        "username": who,  # each call is a fresh session's first signing: the user ID too
        **extra,
    }
    return signed_in(api, who).post(f"/api/holds/{hold.id}/disposition", json=body)


def batch_status(api: Api, hold: Hold) -> str:
    api.db.expire_all()
    batch = api.db.get(Batch, hold.batch_id)
    assert batch is not None
    return batch.status


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    return body


def test_a_freezing_hold_takes_two_qa_review_then_approval(api: Api) -> None:
    hold = held(api, FREEZING)
    shown = api.client.get(f"/api/holds/{hold.id}", headers=api.as_("viewer")).get_json()
    assert shown["two_person"] and shown["two_person_because"] == ["hold reason freezing"]
    assert shown["awaiting"] == "review" and shown["signatures"] == []

    # Approval before review: refused, nothing signed.
    early = problem(decide(api, "qa", hold, "release"), 409)
    assert "needs two QA signatures" in early["detail"] and "nobody has reviewed" in early["detail"]
    assert api.db.scalars(select(Signature)).all() == []

    # Nor round the hold: a batch status change does not release it either.
    bypass = signed_in(api, "qa").post(
        f"/api/batches/{hold.batch_id}/status",
        json={"status": "available", "reason": "fine", "password": PASSWORD, "username": "qa"},
    )
    refused = problem(bypass, 409)["detail"]
    assert f"under hold {hold.id}" in refused and f"hold {hold.id} takes two QA" in refused
    assert batch_status(api, hold) == "held"

    reviewed = decide(api, "qa", hold, "review")
    assert reviewed.status_code == 200, reviewed.get_json()
    body = reviewed.get_json()
    assert (body["status"], body["awaiting"], body["reviewed_by"]) == ("open", "approval", "qa")
    assert body["reviewed_by_name"] == "Qa User" and body["reviewed_at"]
    assert batch_status(api, hold) == "held"  # one signature releases nothing

    # The same person twice: refused with a clear message, whatever the decision.
    twice = problem(decide(api, "qa", hold, "release"), 409)
    assert "qa reviewed this hold" in twice["detail"] and "different QA" in twice["detail"]
    assert "reviewed by qa already" in problem(decide(api, "qa2", hold, "review"), 409)["detail"]
    wrong_meaning = problem(decide(api, "qa2", hold, "release", meaning="release"), 409)
    assert "meaning 'approval'" in wrong_meaning["detail"]
    assert batch_status(api, hold) == "held"

    approved = decide(api, "qa2", hold, "release", meaning="approval")
    assert approved.status_code == 200, approved.get_json()
    body = approved.get_json()
    assert body["status"] == "released" and body["awaiting"] is None
    assert batch_status(api, hold) == "available"  # only after the second signature
    listed = [(s["full_name"], s["username"], s["meaning"]) for s in body["signatures"]]
    assert listed == [("Qa User", "qa", "review"), ("Robin Second (QA)", "qa2", "approval")]
    assert all(
        s["signed_at"] and re.fullmatch(r"[0-9a-f]{64}", s["record_hash"])
        for s in body["signatures"]
    )
    stored = api.db.scalars(select(Signature).order_by(Signature.id)).all()
    assert [(s.meaning, s.record_table, s.record_key) for s in stored] == [
        ("review", "holds", str(hold.id)),
        ("approval", "holds", str(hold.id)),
    ]
    assert body["signature_id"] == stored[1].id


def test_a_high_risk_product_takes_two_qa_whatever_the_reason(api: Api) -> None:
    changed = api.client.patch(
        f"/api/products/{GTIN}",
        json={"risk_class": "high", "reason": "stability data: narrow margin"},
        headers=api.as_("admin"),
    )
    assert changed.status_code == 200 and changed.get_json()["risk_class"] == "high"
    bad = api.client.patch(
        f"/api/products/{GTIN}",
        json={"risk_class": "extreme", "reason": "x"},
        headers=api.as_("admin"),
    )
    assert problem(bad, 422)["errors"][0]["field"] == "risk_class"
    hold = held(api, ALARM)
    shown = api.client.get(f"/api/holds/{hold.id}", headers=api.as_("viewer")).get_json()
    assert shown["two_person_because"] == ["product risk class high"]
    assert "nobody has reviewed" in problem(decide(api, "qa", hold, "reject"), 409)["detail"]
    assert decide(api, "qa", hold, "review").status_code == 200
    rejected = decide(api, "qa2", hold, "reject")
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    assert batch_status(api, hold) == "rejected"


def test_a_standard_hold_is_still_released_by_one_signature(api: Api) -> None:
    hold = held(api, ALARM)
    shown = api.client.get(f"/api/holds/{hold.id}", headers=api.as_("viewer")).get_json()
    assert not shown["two_person"] and shown["awaiting"] == "decision"
    assert "nothing to review" in problem(decide(api, "qa", hold, "review"), 409)["detail"]
    released = decide(api, "qa", hold, "release")
    assert released.status_code == 200, released.get_json()
    assert [s["meaning"] for s in released.get_json()["signatures"]] == ["release"]
    assert batch_status(api, hold) == "available"


def test_the_two_person_reasons_are_configured(pg_url: str, api: Api) -> None:
    from cloud.entrypoints.api import create_app
    from cloud.entrypoints.api.database import EXTENSION

    app = create_app(
        pg_url, {"TESTING": True, "SECRET_KEY": "t", "TWO_PERSON_REASONS": frozenset()}
    )
    try:
        hold = held(api, FREEZING)
        client = app.test_client()
        client.post("/api/session", json={"username": "qa", "password": PASSWORD})
        body = {
            "decision": "release",
            "reason": "one QA suffices here",
            "password": PASSWORD,
            "username": "qa",
        }
        released = client.post(f"/api/holds/{hold.id}/disposition", json=body)
        assert released.status_code == 200 and released.get_json()["status"] == "released"
    finally:  # its own engine: closed here, not left to the garbage collector
        app.extensions[EXTENSION].kw["bind"].dispose()


def pick(api: Api, ident: str = "SH-1") -> None:
    scan = {
        "data": f"]d201{GTIN}17270630" + "10L1\x1d213",
        "read_point_id": "a-cold-door",
        "scanned_at": at(0).isoformat(),
    }
    assert api.client.post("/api/scans", json=scan, headers=api.as_("operator")).status_code == 201
    picked = {"id": ident, "order_id": "PO-77", "items": [epc(3)], "at": at(1).isoformat()}
    assert (
        api.client.post("/api/shipments", json=picked, headers=api.as_("operator")).status_code
        == 201
    )


def test_loading_cold_goods_needs_qa_signed_release_for_shipment(api: Api) -> None:
    c, op = api.client, api.as_("operator")
    pick(api)
    load = {"truck_zone_id": "t7-reefer", "at": at(20).isoformat()}
    refused = problem(c.post("/api/shipments/SH-1/load", json=load, headers=op), 409)
    assert [(r["code"], r["subject"]) for r in refused["reasons"]] == [("shipping_release", "L1")]
    assert "shipment SH-1 has no signed release for shipment" in refused["detail"]
    assert c.get("/api/shipments/SH-1", headers=op).get_json()["state"] == "picked"

    # The evidence QA signs over: budget left, MKT, open excursions of each batch.
    api.db.info["actor"] = "test-setup"
    product = api.db.get(Product, GTIN)
    assert product is not None
    api.db.info["reason"] = "budget for the test"
    product.stability_budget_min = 120
    excursion = Excursion(
        zone_id="a-cold",
        profile_id="2-8C",
        rule="warning high",
        kind="high",
        level="warning",
        started_at=at(5),
        state="open",
        detected_at=at(6),
    )
    api.db.add(excursion)
    api.db.commit()
    manifest = c.get("/api/shipments/SH-1/release", headers=op).get_json()
    assert manifest["required"] is True and manifest["release"] is None
    (batch,) = manifest["batches"]
    assert (batch["lot"], batch["temperature_class"], batch["items"]) == ("L1", "2-8C", 1)
    assert (batch["budget_min"], batch["remaining_budget_min"]) == (120, 120)
    assert "mkt_c" in batch
    assert [(e["id"], e["kind"]) for e in batch["open_excursions"]] == [(excursion.id, "high")]

    body = {
        "password": PASSWORD,
        "username": "qa",  # the user ID: each client here signs for the first time
        "reason": "evidence reviewed",
        "at": at(10).isoformat(),
    }
    assert c.post("/api/shipments/SH-1/release", json=body, headers=op).status_code == 403  # role
    qa = signed_in(api, "qa")
    wrong = problem(qa.post("/api/shipments/SH-1/release", json={**body, "password": "nope"}), 403)
    assert wrong["type"] == "urn:coldchain:problem:signature-refused"
    released = qa.post("/api/shipments/SH-1/release", json=body)
    assert released.status_code == 201, released.get_json()
    signed = released.get_json()["release"]
    signature = signed["signature"]
    assert (signature["meaning"], signature["username"], signature["full_name"]) == (
        "shipment_release",
        "qa",
        "Qa User",
    )
    assert signed["manifest"]["batches"][0]["open_excursions"][0]["id"] == excursion.id
    row = api.db.get(ShippingRelease, signed["id"])
    assert row is not None and row.shipment_id == "SH-1"
    assert signature["record"] == f"shipping_releases {row.id}"
    assert signature["record_hash"] == record_hash(api.db, row)  # the manifest as signed

    # The release gate still applies: the open excursion where the goods are stops the truck.
    gated = problem(c.post("/api/shipments/SH-1/load", json=load, headers=op), 409)
    assert [r["code"] for r in gated["reasons"]] == ["open_excursion"]
    api.db.info["reason"] = "excursion over"
    excursion.state, excursion.ended_at = "closed", at(15)
    api.db.commit()
    loaded = c.post("/api/shipments/SH-1/load", json=load, headers=op)
    assert loaded.status_code == 200 and loaded.get_json()["state"] == "loaded"


def test_a_release_changed_after_signing_no_longer_counts(api: Api) -> None:
    c, op = api.client, api.as_("operator")
    scan = {
        "data": f"]d201{GTIN}17270630" + "10L1\x1d211",
        "read_point_id": "a-cold-door",
        "scanned_at": at(0).isoformat(),
    }
    assert c.post("/api/scans", json=scan, headers=op).status_code == 201
    plan = {
        "id": "TR-1",
        "origin_site_id": "wh-a",
        "destination_site_id": "wh-b",
        "items": [epc(1)],
        "at": at(1).isoformat(),
    }
    assert c.post("/api/transfers", json=plan, headers=op).status_code == 201
    load = {"items": [epc(1)], "truck_zone_id": "t7-reefer", "at": at(20).isoformat()}
    assert problem(c.post("/api/transfers/TR-1/load", json=load, headers=op), 409)
    body = {
        "password": PASSWORD,
        "username": "qa",  # the user ID: each client here signs for the first time
        "reason": "evidence reviewed",
        "at": at(10).isoformat(),
    }
    assert signed_in(api, "qa").post("/api/transfers/TR-1/release", json=body).status_code == 201
    row = api.db.scalars(select(ShippingRelease)).one()
    api.db.info.update(actor="somebody", reason="edited the evidence")
    row.manifest = {**row.manifest, "batches": []}
    api.db.commit()
    stale = problem(c.post("/api/transfers/TR-1/load", json=load, headers=op), 409)
    assert [r["code"] for r in stale["reasons"]] == ["shipping_release"]
    assert signed_in(api, "qa").post("/api/transfers/TR-1/release", json=body).status_code == 201
    assert c.post("/api/transfers/TR-1/load", json=load, headers=op).status_code == 200


def test_the_csv_import_takes_a_risk_class(api: Api) -> None:
    rows = (
        "gtin,name,low,high,risk_class\n"
        "04001234567891,Insulin glargine 100 U/ml pen,2,8,high\n"
        "08894820030017,Adalimumab 40 mg prefilled syringe,2,8,\n"
    )
    admin = api.as_("admin")
    bad = api.client.post(
        "/api/import/products",
        data=rows.replace(",high\n", ",extreme\n"),
        content_type="text/csv",
        headers=admin,
    )
    assert [e["field"] for e in problem(bad, 422)["errors"]] == ["risk_class"]
    done = api.client.post(
        "/api/import/products", data=rows, content_type="text/csv", headers=admin
    )
    assert done.status_code in (200, 201), done.get_json()
    api.db.expire_all()
    classes = {g: api.db.get(Product, g).risk_class for g in ("04001234567891", "08894820030017")}  # type: ignore[union-attr]
    assert classes == {"04001234567891": "high", "08894820030017": "standard"}
