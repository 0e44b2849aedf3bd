"""EPCIS 2.0 wired to PostgreSQL: stored reads, scans, transfers and readings exported through
the API and the CLI, each document valid against GS1's schema; partner documents imported
into custody through both, unknown places and EPCs reported, each event taken once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cloud.adapters.epcis_schema import validate
from cloud.adapters.orm.readings import Observation, Reading, ReadPoint, Sensor
from cloud.adapters.orm.traceability import Batch, EpcisReceipt, Item, Product, Scan
from cloud.entrypoints.cli import main as cli
from cloud.service_layer.custody import item_timeline, rebuild_custody
from cloud.service_layer.epcis_import import import_document
from edge.gs1 import decode_epc
from edge.gs1 import parse_epc_uri as decode_epc_uri
from tests.integration.api_support import (
    GTIN,
    Api,
    at,
    epc,
    release_for_shipment,
    running_api,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT / "tests" / "fixtures" / "conformance"
SCHEMA = CONFORMANCE / "epcis" / "EPCIS-JSON-Schema.json"


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        yield running


def stored_history(api: Api) -> int:
    """Vials 1 and 2 read at A's cold-room door, moved on a transfer to B; A's temperatures."""
    db, op = api.db, api.as_("operator")
    db.add_all(
        Observation(
            gateway_id="wh-a-gw",
            seq=n,
            epc=epc(n),
            read_point="a-cold-door",
            first_seen=at(-60),
            last_seen=at(-59),
            count=3,
            received_at=at(-58),
        )
        for n in (1, 2)
    )
    db.add(Sensor(id="a-cold-t1", zone_id="a-cold", gateway_id="wh-a-gw", model="pt100"))
    db.flush()
    db.add_all(
        Reading(
            gateway_id="wh-a-gw",
            seq=100 + k,
            sensor_id="a-cold-t1",
            quantity="temperature",
            value=4.0 + k / 10,
            unit="C",
            quality="ok",
            taken_at=at(-50 + k),
            received_at=at(-50 + k),
        )
        for k in range(10)
    )
    rebuild_custody(db, [1, 2])
    db.commit()
    c = api.client
    plan = {"id": "TR-1", "origin_site_id": "wh-a", "destination_site_id": "wh-b"}
    assert (
        c.post(
            "/api/transfers",
            json={**plan, "items": [epc(1), epc(2)], "at": at(0).isoformat()},
            headers=op,
        ).status_code
        == 201
    )
    release_for_shipment(api, "transfer", "TR-1", 5)
    load = {"items": [epc(1), epc(2)], "truck_zone_id": "t7-reefer", "at": at(10).isoformat()}
    assert c.post("/api/transfers/TR-1/load", json=load, headers=op).status_code == 200
    assert c.post("/api/transfers/TR-1/depart", json={"at": at(20).isoformat()}, headers=op)
    receive = {"items": [epc(1), epc(2)], "zone_id": "b-cold", "at": at(300).isoformat()}
    assert c.post("/api/transfers/TR-1/receive", json=receive, headers=op).status_code == 200
    return db.scalars(select(Batch.id).where(Batch.lot == "L1")).one()


def events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["epcisBody"]["eventList"]


def test_a_batch_exports_as_a_valid_epcis_document_with_its_conditions(api: Api) -> None:
    batch_id = stored_history(api)
    got = api.client.get(
        f"/api/epcis/events?batch={batch_id}&sensors=true", headers=api.as_("viewer")
    )
    assert got.status_code == 200 and got.mimetype == "application/ld+json"
    doc = json.loads(got.get_data())
    assert validate(doc, SCHEMA) == []
    sgtin = decode_epc(epc(1)).pure_identity_uri
    steps = [(e.get("bizStep"), e.get("readPoint", {}).get("id")) for e in events(doc)]
    assert steps[0] == ("receiving", "urn:coldchain:readpoint:a-cold-door")
    assert [s for s, _ in steps if s != "sensor_reporting"][-3:] == [
        "loading",
        "departing",
        "receiving",
    ]
    loading = next(e for e in events(doc) if e.get("bizStep") == "loading")
    assert loading["disposition"] == "in_transit" and loading["epcList"] == sorted(
        [sgtin, decode_epc(epc(2)).pure_identity_uri]
    )
    assert loading["bizLocation"] == {"id": "urn:coldchain:zone:t7-reefer"}
    stay = next(e for e in events(doc) if e.get("bizStep") == "sensor_reporting")
    assert stay["bizLocation"] == {"id": "urn:coldchain:zone:a-cold"}
    (report,) = stay["sensorElementList"][0]["sensorReport"]
    assert (report["type"], report["minValue"], report["maxValue"], report["uom"]) == (
        "Temperature",
        4.0,
        4.9,
        "CEL",
    )
    # The same rows give the same event IDs: a partner importing twice sees duplicates.
    again = api.client.get(
        f"/api/epcis/events?batch={batch_id}&sensors=true", headers=api.as_("viewer")
    )
    assert [e["eventID"] for e in events(json.loads(again.get_data()))] == [
        e["eventID"] for e in events(doc)
    ]


def test_an_item_or_a_time_range_exports_only_what_it_names(api: Api) -> None:
    stored_history(api)
    viewer = api.as_("viewer")
    one = json.loads(api.client.get(f"/api/epcis/events?item={epc(1)}", headers=viewer).get_data())
    assert validate(one, SCHEMA) == []
    assert all(e["epcList"] == [decode_epc(epc(1)).pure_identity_uri] for e in events(one))
    window = "from=2026-03-02T06:05:00Z&to=2026-03-02T06:30:00Z"
    ranged = json.loads(api.client.get(f"/api/epcis/events?{window}", headers=viewer).get_data())
    assert validate(ranged, SCHEMA) == []
    assert [e["bizStep"] for e in events(ranged)] == ["loading", "departing"]
    nothing = api.client.get("/api/epcis/events", headers=viewer)
    assert nothing.status_code == 400 and "name a batch" in nothing.json["detail"]
    assert api.client.get("/api/epcis/events?batch=999999", headers=viewer).status_code == 404


def partner_document(*event_list: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-03-02T12:00:00Z",
        "epcisBody": {"eventList": list(event_list)},
    }


def observed(event_id: str, epcs: list[str], read_point: str, minutes: int) -> dict[str, Any]:
    where = "bizLocation" if read_point.startswith("urn:coldchain:zone:") else "readPoint"
    return {
        "type": "ObjectEvent",
        "eventID": event_id,
        "eventTime": at(minutes).isoformat().replace("+00:00", "Z"),
        "eventTimeZoneOffset": "+00:00",
        "epcList": epcs,
        "action": "OBSERVE",
        "bizStep": "receiving",
        where: {"id": read_point},
    }


def test_a_partner_document_is_imported_into_custody_once(api: Api) -> None:
    c, op = api.client, api.as_("operator")
    sgtin = decode_epc(epc(1)).pure_identity_uri
    stranger = "urn:epc:id:sgtin:4012345.011111.1001"
    doc = partner_document(
        observed(
            "urn:uuid:7d4c5c1e-0000-4000-8000-000000000001",
            [sgtin, stranger],
            "urn:coldchain:readpoint:b-cold-door",
            30,
        ),
        observed(
            "urn:uuid:7d4c5c1e-0000-4000-8000-000000000002",
            [f"https://id.gs1.org/01/{GTIN}/21/2"],
            "urn:coldchain:zone:b-cold",  # no read point: placed at one in the zone
            40,
        ),
        observed(
            "urn:uuid:7d4c5c1e-0000-4000-8000-000000000003",
            [sgtin],
            "urn:epc:id:sgln:4012345.00001.0",
            50,
        ),
    )
    first = c.post("/api/epcis/events", json=doc, headers=op)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.json | {"custody_intervals": None} == {
        "events": 3,
        "imported": 2,
        "duplicates": 0,
        "sightings": 2,
        "custody_intervals": None,
        "unknown_epcs": [stranger],
        "unknown_locations": ["urn:epc:id:sgln:4012345.00001.0"],
        "skipped": [],
    }
    where = c.get(f"/api/items/{epc(1)}/custody/current", headers=op).json["custody"]
    assert where["zone_id"] == "b-cold" and where["basis"] == "observed"
    assert (
        c.get(f"/api/items/{GTIN}+2/custody/current", headers=op).json["custody"]["zone_id"]
        == "b-cold"
    )
    second = c.post("/api/epcis/events", json=doc, headers=op)
    assert (second.json["imported"], second.json["duplicates"]) == (0, 2)
    assert api.db.scalar(select(func.count()).select_from(Scan)) == 2
    assert {s.actor for s in api.db.scalars(select(Scan))} == {"operator"}
    assert api.db.scalar(select(func.count()).select_from(EpcisReceipt)) == 2
    broken = c.post("/api/epcis/events", json={"type": "EPCISDocument"}, headers=op)
    assert broken.status_code == 422 and broken.mimetype == "application/problem+json"
    assert c.post("/api/epcis/events", json=doc, headers=api.as_("viewer")).status_code == 403


def test_the_cli_exports_and_imports(api: Api, pg_url: str, tmp_path: Path) -> None:
    batch_id = stored_history(api)
    runner = CliRunner()
    out = tmp_path / "batch.jsonld"
    exported = runner.invoke(
        cli,
        ["epcis-export", "--batch", "L1", "--sensors", "--validate", str(SCHEMA), "-o", str(out)],
        env={"COLDCHAIN_DATABASE_URL": pg_url},
    )
    assert exported.exit_code == 0, exported.output
    doc = json.loads(out.read_text())
    assert validate(doc, SCHEMA) == [] and len(events(doc)) >= 6
    naive = runner.invoke(
        cli, ["epcis-export", "--from", "2026-03-02T06:00"], env={"COLDCHAIN_DATABASE_URL": pg_url}
    )
    assert naive.exit_code == 2 and "no offset" in naive.output
    partner = tmp_path / "partner.json"
    sgtin = decode_epc(epc(3)).pure_identity_uri
    partner.write_text(
        json.dumps(
            partner_document(
                observed("urn:uuid:1", [sgtin], "urn:coldchain:readpoint:b-cold-door", 400),
                observed("urn:uuid:2", [sgtin], "urn:example:dock-9", 410),
            )
        )
    )
    imported = runner.invoke(
        cli,
        ["epcis-import", str(partner), "--actor", "partner:acme"],
        env={"COLDCHAIN_DATABASE_URL": pg_url},
    )
    assert imported.exit_code == 1  # one event could not be placed
    assert "1 imported (1 sightings)" in imported.output
    assert "unknown read point or location: urn:example:dock-9" in imported.output
    item = api.db.scalars(select(Item).where(Item.serial == "3")).one()
    api.db.expire_all()
    assert [s.actor for s in api.db.scalars(select(Scan).where(Scan.serial == "3"))] == [
        "partner:acme"
    ]
    assert batch_id and item.batch_id == batch_id


EXAMPLES = CONFORMANCE / "epcis"


def test_every_gs1_example_imports_and_a_mapped_read_point_places_its_items(api: Api) -> None:
    db = api.db
    db.info["actor"] = "test-setup"
    vial = "0614141.107346.2017"  # Example 9.6.1: read at the partner's SGLN 0614141.07346.1234
    partner_gtin = decode_epc_uri(f"urn:epc:id:sgtin:{vial}").gtin
    db.add(Product(gtin=partner_gtin, name="partner vial"))
    db.flush()
    lot = db.scalars(select(Batch).where(Batch.lot == "L1")).one()
    db.add(Item(gtin=partner_gtin, serial="2017", batch_id=lot.id))
    # A partner's read point is mapped by registering it under the partner's own URI.
    db.add(
        ReadPoint(
            id="urn:epc:id:sgln:0614141.07346.1234",
            zone_id="b-cold",
            gateway_id="wh-b-gw",
            reader="partner",
            business_step="receiving",
        )
    )
    db.commit()
    paths = sorted(
        path
        for folder in ("JSON", "JSON-simple-context")  # GS1's example documents
        for path in (EXAMPLES / folder).rglob("*")
        if path.suffix in (".json", ".jsonld")
    )
    assert len(paths) == 65, f"GS1 examples missing under {EXAMPLES}"
    imported = 0
    for path in paths:
        doc = json.loads(path.read_text(encoding="utf-8"))
        report = import_document(db, doc, actor="partner")
        db.commit()
        assert report.imported + report.duplicates + len(report.skipped) <= report.events
        imported += report.imported
    assert imported >= 1
    item = db.scalars(select(Item).where(Item.gtin == partner_gtin)).one()
    (where,) = [c for c in item_timeline(db, item.id) if c.ended_at is None]
    assert where.zone_id == "b-cold"
    again = import_document(
        db, json.loads((EXAMPLES / "JSON/Example_9.6.1-ObjectEvent.jsonld").read_text()), "partner"
    )
    assert again.imported == 0 and again.duplicates == 1


def test_export_and_import_work_on_sqlite_too(sqlite_url: str) -> None:
    with running_api(sqlite_url) as lite:
        batch_id = stored_history(lite)
        viewer, op = lite.as_("viewer"), lite.as_("operator")
        got = lite.client.get(f"/api/epcis/events?batch={batch_id}&sensors=true", headers=viewer)
        doc = json.loads(got.get_data())
        assert validate(doc, SCHEMA) == [] and len(events(doc)) >= 6
        sgtin = decode_epc(epc(3)).pure_identity_uri
        partner = partner_document(
            observed("urn:uuid:3", [sgtin], "urn:coldchain:readpoint:b-cold-door", 400)
        )
        report = lite.client.post("/api/epcis/events", json=partner, headers=op).json
        assert (report["imported"], report["sightings"]) == (1, 1)
        where = lite.client.get(f"/api/items/{epc(3)}/custody/current", headers=op).json
        assert where["custody"]["zone_id"] == "b-cold"
