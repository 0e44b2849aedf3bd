"""A recall through the API on PostgreSQL: signed by QA, every item traced to a cold room,
a truck or a customer, the batch frozen, and the regulator's CSV and PDF reports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from cloud.adapters.orm.alerting import Alert, RecallItem
from cloud.adapters.orm.people import Signature
from cloud.adapters.orm.traceability import Batch
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


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        yield running


def post(api: Api, url: str, body: dict, role: str = "operator", status: int = 200) -> dict:
    answer = api.client.post(url, json=body, headers=api.as_(role))
    assert answer.status_code == status, answer.get_data(as_text=True)
    return answer.get_json()


def scan(api: Api, serial: int, minutes: float) -> None:
    data = f"]d201{GTIN}17270630" + f"10L1{GS}21{serial}"
    body = {"data": data, "read_point_id": "a-cold-door", "scanned_at": at(minutes).isoformat()}
    post(api, "/api/scans", body, status=201)


def spread_the_batch(api: Api) -> None:
    """Item 1 stays in the cold room, item 2 is on a truck, item 3 reached the hospital."""
    for serial in (1, 2, 3):
        scan(api, serial, 0)
    post(
        api,
        "/api/transfers",
        {
            "id": "TR-1",
            "origin_site_id": "wh-a",
            "destination_site_id": "wh-b",
            "items": [epc(2)],
            "at": at(5).isoformat(),
        },
        status=201,
    )
    release_for_shipment(api, "transfer", "TR-1", 8)
    post(
        api,
        "/api/transfers/TR-1/load",
        {"items": [epc(2)], "truck_zone_id": "t7-reefer", "at": at(10).isoformat()},
    )
    post(api, "/api/transfers/TR-1/depart", {"at": at(20).isoformat()})
    post(
        api,
        "/api/shipments",
        {"id": "SH-1", "order_id": "PO-77", "items": [epc(3)], "at": at(30).isoformat()},
        status=201,
    )
    release_for_shipment(api, "shipment", "SH-1", 35)
    post(api, "/api/shipments/SH-1/load", {"truck_zone_id": "t7-reefer", "at": at(40).isoformat()})
    post(api, "/api/shipments/SH-1/ship", {"at": at(50).isoformat()})
    post(
        api,
        "/api/shipments/SH-1/deliver",
        {"zone_id": "sm-pharmacy", "at": at(120).isoformat()},
    )


def test_a_signed_recall_traces_every_item_and_freezes_the_batch(api: Api) -> None:
    spread_the_batch(api)
    l1 = api.db.scalars(select(Batch).where(Batch.lot == "L1")).one()
    wrong = api.client.post(
        "/api/recalls",
        json={
            "batch_id": l1.id,
            "reason": "supplier notice",
            "password": "not it",
            "username": "qa",
        },
        headers=api.as_("qa"),
    )
    assert wrong.status_code == 403 and "wrong password" in wrong.get_json()["detail"]
    body = {"batch_id": l1.id, "reason": "supplier notice 2026-17", "password": PASSWORD}
    body["username"] = "qa"  # a token is no continuous session: both components, every time
    recall = post(api, "/api/recalls", body, role="qa", status=201)
    assert recall["lot"] == "L1" and recall["previous_status"] == "available"
    (signature,) = recall["signatures"]
    assert signature["meaning"] == "approval"
    where = {
        i["element_string"]: (i["disposition"], i["zone_id"], i["customer_id"], i["shipment_id"])
        for i in recall["items"]
    }
    assert where == {
        f"(01){GTIN}(21)1": ("frozen", "a-cold", None, None),
        f"(01){GTIN}(21)2": ("in_transit", "t7-reefer", None, None),
        f"(01){GTIN}(21)3": ("at_customer", "sm-pharmacy", "st-marys", "SH-1"),
    }
    history = {i["element_string"]: [c["zone_id"] for c in i["custody"]] for i in recall["items"]}
    assert history[f"(01){GTIN}(21)3"] == ["a-cold", "t7-reefer", "sm-pharmacy"]

    api.db.expire_all()
    assert api.db.get(Batch, l1.id).status == "recalled"  # type: ignore[union-attr]
    assert api.db.scalar(select(Signature.record_table).where(Signature.id == signature["id"])) == (
        "recalls"
    )
    assert api.db.scalars(select(Alert.severity).where(Alert.subject_kind == "recall")).all() == [
        "critical"
    ]
    assert len(api.db.scalars(select(RecallItem)).all()) == 3
    again = api.client.post("/api/recalls", json=body, headers=api.as_("qa"))
    assert again.status_code == 409 and "open recall already" in again.get_json()["detail"]

    # Frozen: what is still ours cannot be loaded any more.
    post(
        api,
        "/api/transfers",
        {
            "id": "TR-2",
            "origin_site_id": "wh-a",
            "destination_site_id": "wh-b",
            "items": [epc(1)],
            "at": at(130).isoformat(),
        },
        status=409,
    )

    rows = list(
        csv.DictReader(
            io.StringIO(
                api.client.get(
                    f"/api/recalls/{recall['id']}/report.csv", headers=api.as_("qa")
                ).get_data(as_text=True)
            )
        )
    )
    assert [(r["serial"], r["disposition"], r["customer_id"]) for r in rows] == [
        ("1", "frozen", ""),
        ("2", "in_transit", ""),
        ("3", "at_customer", "st-marys"),
    ]
    assert "sm-pharmacy" in rows[2]["custody_history"]
    pdf = api.client.get(f"/api/recalls/{recall['id']}/report.pdf", headers=api.as_("qa"))
    assert pdf.mimetype == "application/pdf"
    text = " ".join(
        " ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf.data)).pages
    )
    for expected in (
        "recall",
        "supplier notice 2026-17",
        "Qa User (qa)",
        "1 at customer, 1 frozen, 1 in transit",
        "st-marys",
    ):
        assert expected in text, expected
    listed = api.client.get("/api/recalls", headers=api.as_("viewer")).get_json()
    assert [r["id"] for r in listed["items"]] == [recall["id"]]
    assert api.client.get("/api/recalls/404", headers=api.as_("viewer")).status_code == 404


def test_recall_of_an_unknown_batch(api: Api) -> None:
    body = {"batch_id": 999, "reason": "x", "password": PASSWORD, "username": "qa"}
    assert post(api, "/api/recalls", body, role="qa", status=404)["type"].endswith("recall-refused")
