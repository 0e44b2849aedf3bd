"""EPCIS 2.0 against GS1's own material in tests/fixtures/conformance/epcis, used as it is.

What the export writes for a day at a warehouse (receiving at the dock, storing in a cold room
with temperature readings, packing onto a pallet, loading, shipping) validates against the
official JSON schema with date-time and URI format checks on; every GS1 example document
imports, with the right events and fields; and export -> import gives the same events back.
If that material is missing, the tests fail saying so, they are never skipped.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cloud.adapters.epcis_schema import validate
from cloud.domain.epcis import (
    CELSIUS,
    TEMPERATURE,
    AggregationEvent,
    Event,
    ObjectEvent,
    OtherEvent,
    SensorElement,
    SensorReport,
    document,
    parse_document,
)

ROOT = Path(__file__).resolve().parents[2]
EPCIS_DIR = ROOT / "tests" / "fixtures" / "conformance" / "epcis"
SCHEMA = EPCIS_DIR / "EPCIS-JSON-Schema.json"
# EPCIS documents per example folder at the pinned gs1/EPCIS commit (its README counts the
# 47 in JSON/; JSON-simple-context/ repeats the 18 sensor examples with the simple context)
EXAMPLE_FOLDERS = {"JSON": 47, "JSON-simple-context": 18}
MAPPED = {"ObjectEvent": ObjectEvent, "AggregationEvent": AggregationEvent}

CET = timezone(timedelta(hours=1))
COMPANY = "4012345"
ITEMS = tuple(f"urn:epc:id:sgtin:{COMPANY}.011111.{serial}" for serial in range(1001, 1007))
PALLET = f"urn:epc:id:sscc:{COMPANY}.0000000017"
WAREHOUSE = f"urn:epc:id:sgln:{COMPANY}.00001.0"
DOCK_IN = f"urn:epc:id:sgln:{COMPANY}.00001.101"
COLD_ROOM = f"urn:epc:id:sgln:{COMPANY}.00001.201"
PACKING = f"urn:epc:id:sgln:{COMPANY}.00001.301"
DOCK_OUT = f"urn:epc:id:sgln:{COMPANY}.00001.102"
LOGGER = f"urn:epc:id:giai:{COMPANY}.9001"


def _missing(path: Path) -> str:
    return (
        f"EPCIS conformance material {path} is missing: tests/fixtures/conformance/epcis "
        "holds GS1's EPCIS 2.0 schema and example documents (see the README there)"
    )


def _require(path: Path | None) -> Path:
    if path is None or not path.exists():
        pytest.fail(_missing(path or EPCIS_DIR), pytrace=False)
    return path


def _example_paths() -> list[Path]:
    return sorted(
        path
        for folder in EXAMPLE_FOLDERS
        for path in (EPCIS_DIR / folder).rglob("*")
        if path.suffix in (".jsonld", ".json")
    )


def _examples() -> list[Any]:
    """One param per GS1 example document; a single failing placeholder if they are missing."""
    paths = _example_paths()
    if not paths:
        return [pytest.param(None, id="MISSING")]
    return [pytest.param(path, id=str(path.relative_to(EPCIS_DIR))) for path in paths]


@cache
def _load(path: Path) -> dict[str, Any]:
    return json.loads(_require(path).read_text(encoding="utf-8"))


def _example(relative: str) -> dict[str, Any]:
    return _load(EPCIS_DIR / relative)


def _raw_events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    body = doc["epcisBody"]
    return (
        body["eventList"]
        if "eventList" in body
        else body["queryResults"]["resultsBody"]["eventList"]
    )


def _temperatures(event: Event) -> list[SensorReport]:
    assert isinstance(event, ObjectEvent | AggregationEvent)
    return [
        report
        for element in event.sensor_elements
        for report in element.reports
        if report.type == TEMPERATURE
    ]


# --- the material ---------------------------------------------------------------------------


def test_the_schema_and_every_example_folder_are_present() -> None:
    _require(SCHEMA)
    found = Counter(path.relative_to(EPCIS_DIR).parts[0] for path in _example_paths())
    assert found == EXAMPLE_FOLDERS, _missing(EPCIS_DIR) if not found else "example set changed"


# --- (1) what the export writes validates against the official schema -----------------------


def _day() -> dict[str, Event]:
    """A realistic day: receive, store cold (with readings), pack, load, ship."""
    t0 = datetime(2024, 3, 4, 7, 12, 5, tzinfo=UTC)
    common: dict[str, Any] = {"event_time_zone_offset": "+01:00", "biz_location": WAREHOUSE}
    return {
        "receiving": ObjectEvent(
            **common,
            event_time=t0,
            action="OBSERVE",
            epc_list=ITEMS,
            biz_step="receiving",
            disposition="in_progress",
            read_point=DOCK_IN,
            event_id="urn:uuid:0b5f0e7e-6a1d-4f7b-9a53-2f7f8c1d0001",
        ),
        "storing": ObjectEvent(
            **common,
            event_time=t0 + timedelta(hours=4),
            action="OBSERVE",
            epc_list=ITEMS,
            biz_step="storing",
            disposition="sellable_not_accessible",
            read_point=COLD_ROOM,
            sensor_elements=(
                SensorElement(
                    time=t0 + timedelta(hours=4),
                    device_id=LOGGER,
                    reports=(
                        SensorReport(type=TEMPERATURE, value=5.3, uom=CELSIUS),
                        SensorReport(type="RelativeHumidity", value=61.0, uom="P1"),
                    ),
                ),
                SensorElement(
                    start_time=t0 + timedelta(minutes=20),
                    end_time=t0 + timedelta(hours=4),
                    device_id=LOGGER,
                    reports=(
                        SensorReport(
                            type=TEMPERATURE,
                            min_value=3.9,
                            max_value=7.6,
                            mean_value=5.125,
                            uom=CELSIUS,
                        ),
                    ),
                ),
            ),
        ),
        "packing": AggregationEvent(
            **common,
            event_time=t0 + timedelta(hours=26, microseconds=250),
            action="ADD",
            parent_id=PALLET,
            child_epcs=ITEMS,
            biz_step="packing",
            disposition="in_progress",
            read_point=PACKING,
        ),
        "loading": ObjectEvent(
            **common,
            event_time=t0 + timedelta(hours=27),
            action="OBSERVE",
            epc_list=(PALLET,),
            biz_step="loading",
            disposition="in_progress",
            read_point=DOCK_OUT,
        ),
        "shipping": ObjectEvent(
            event_time=t0 + timedelta(hours=27, minutes=40),
            event_time_zone_offset="+01:00",
            action="OBSERVE",
            epc_list=(PALLET,),
            biz_step="urn:epcglobal:cbv:bizstep:shipping",
            disposition="in_transit",
            read_point=DOCK_OUT,
        ),
    }


CREATED = datetime(2024, 3, 5, 18, 0, tzinfo=CET)


def _wire(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as a partner receives it: through json.dumps."""
    return json.loads(json.dumps(doc))


@pytest.mark.parametrize("step", ["the whole day", *_day()])
def test_every_exported_document_is_valid_against_the_gs1_schema(step: str) -> None:
    events = list(_day().values()) if step == "the whole day" else [_day()[step]]
    doc = _wire(document(events, CREATED))
    assert validate(doc, _require(SCHEMA)) == []


def test_the_format_checker_is_active() -> None:
    schema = _require(SCHEMA)
    doc = _wire(document(_day().values(), CREATED))
    assert validate(doc, schema) == []
    doc["epcisBody"]["eventList"][0]["eventTime"] = "2024-03-04T25:61:00+01:00"
    doc["epcisBody"]["eventList"][1]["epcList"][0] = "not a uri"
    assert validate(doc, schema) == [
        "epcisBody/eventList/0/eventTime: '2024-03-04T25:61:00+01:00' is not a 'date-time'",
        "epcisBody/eventList/1/epcList/0: 'not a uri' is not a 'uri'",
    ]
    # the same document passes when formats go unchecked: the checker is what catches it
    without_formats = Draft7Validator(json.loads(schema.read_text(encoding="utf-8")))
    assert list(without_formats.iter_errors(doc)) == []


def test_the_schema_catches_what_the_event_types_cannot() -> None:
    packed = _wire(document([_day()["packing"]], CREATED))
    del packed["epcisBody"]["eventList"][0]["childEPCs"]  # ADD with nothing to add
    assert validate(packed, _require(SCHEMA)) != []


# --- (2) every GS1 example imports ----------------------------------------------------------


@pytest.mark.parametrize("path", _examples())
def test_every_gs1_example_document_imports(path: Path | None) -> None:
    raw_events = _raw_events(_load(_require(path)))
    events = parse_document(_load(path))
    assert len(events) == len(raw_events)
    for event, raw in zip(events, raw_events, strict=True):
        assert event.raw == raw
        if raw["type"] not in MAPPED:
            assert event == OtherEvent(type=raw["type"], raw=raw)
            continue
        assert isinstance(event, MAPPED[raw["type"]])
        assert (event.action, event.event_time_zone_offset) == (
            raw["action"],
            raw["eventTimeZoneOffset"],
        )
        assert event.event_time == datetime.fromisoformat(raw["eventTime"])
        epcs = event.epc_list if isinstance(event, ObjectEvent) else event.child_epcs
        assert list(epcs) == raw.get("epcList", raw.get("childEPCs", []))
        reports = [element["sensorReport"] for element in raw.get("sensorElementList", [])]
        assert [len(element.reports) for element in event.sensor_elements] == list(
            map(len, reports)
        )


def test_the_examples_hold_the_expected_events() -> None:
    kinds: Counter[str] = Counter()
    temperatures = 0
    for path in map(_require, _example_paths() or [None]):
        for event in parse_document(_load(path)):
            kinds[event.type if isinstance(event, OtherEvent) else type(event).__name__] += 1
            if not isinstance(event, OtherEvent):
                temperatures += len(_temperatures(event))
    assert kinds == {
        "ObjectEvent": 47,
        "AggregationEvent": 5,
        "AssociationEvent": 10,
        "TransformationEvent": 7,
        "TransactionEvent": 5,
    }
    assert temperatures == 46


def test_example_9_6_1_object_events() -> None:
    shipped, received = parse_document(_example("JSON/Example_9.6.1-ObjectEvent.jsonld"))
    assert shipped == ObjectEvent(
        event_time=datetime(2005, 4, 4, 2, 33, 31, 116000, tzinfo=UTC),
        event_time_zone_offset="-06:00",
        action="OBSERVE",
        epc_list=("urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sgtin:0614141.107346.2018"),
        biz_step="shipping",
        disposition="in_transit",
        read_point="urn:epc:id:sgln:0614141.07346.1234",
        event_id="ni:///sha-256;df7bb3c352fef055578554f09f5e2aa41782150ced7bd0b8af24dd3ccb30ba69"
        "?ver=CBV2.0",
    )
    assert isinstance(received, ObjectEvent)
    assert received.epc_list == ("urn:epc:id:sgtin:0614141.107346.2018",)
    assert (received.biz_step, received.disposition) == ("receiving", "in_progress")
    assert received.biz_location == "urn:epc:id:sgln:0012345.11111.0"
    assert received.raw is not None
    assert received.raw["example:myField"] == "Example of a vendor/user extension"
    assert len(received.raw["bizTransactionList"]) == 2
    query = parse_document(_example("JSON/EPCISQueryDocument.jsonld"))
    assert query == [shipped, received]


def test_example_9_6_3_aggregation_event() -> None:
    (event,) = parse_document(_example("JSON/Example_9.6.3-AggregationEvent.jsonld"))
    assert isinstance(event, AggregationEvent)
    assert event.parent_id == "urn:epc:id:sscc:0614141.1234567890"
    assert event.child_epcs == (
        "urn:epc:id:sgtin:0614141.107346.2017",
        "urn:epc:id:sgtin:0614141.107346.2018",
    )
    assert (event.action, event.biz_step, event.disposition) == (
        "OBSERVE",
        "receiving",
        "in_progress",
    )
    assert event.event_time == datetime(2013, 6, 8, 14, 58, 56, 591000, tzinfo=UTC)
    assert (event.read_point, event.biz_location) == (
        "urn:epc:id:sgln:0614141.00777.0",
        "urn:epc:id:sgln:0614141.00888.0",
    )
    assert event.raw is not None and len(event.raw["childQuantityList"]) == 2


def test_sensor_data_readings_at_points_in_time() -> None:
    (event,) = parse_document(_example("JSON/WithSensorData/SensorDataExample1.jsonld"))
    assert [element.time for element in event.sensor_elements] == [
        datetime(2019, 4, 2, 13, minute, tzinfo=UTC) for minute in (5, 35, 55)
    ]
    assert {element.device_id for element in event.sensor_elements} == {
        "urn:epc:id:giai:4000001.111"
    }
    assert [(r.value, r.uom) for r in _temperatures(event)] == [
        (26.0, "CEL"),
        (26.1, "CEL"),
        (26.2, "CEL"),
    ]


def test_sensor_data_over_an_interval_with_min_and_max() -> None:
    (event,) = parse_document(_example("JSON/WithSensorData/SensorDataExample2.jsonld"))
    (element,) = event.sensor_elements
    assert (element.start_time, element.end_time) == (
        datetime(2019, 4, 2, 12, 55, 1, tzinfo=UTC),
        datetime(2019, 4, 2, 13, 55, tzinfo=UTC),
    )
    assert _temperatures(event) == [
        SensorReport(type="Temperature", min_value=26.0, max_value=26.2, mean_value=26.1, uom="CEL")
    ]


def test_sensor_data_with_a_time_per_report_and_an_aggregation_with_readings() -> None:
    (event,) = parse_document(_example("JSON/WithSensorData/SensorDataExample5.jsonld"))
    assert [(r.time, r.value) for r in _temperatures(event)][-1] == (
        datetime(2019, 4, 2, 13, 55, tzinfo=UTC),
        26.5,
    )
    (packed,) = parse_document(_example("JSON/WithSensorData/SensorDataExample8.jsonld"))
    assert isinstance(packed, AggregationEvent)
    assert [(r.min_value, r.max_value) for r in _temperatures(packed)] == [
        (12.4, 13.8),
        (None, None),  # a Temperature report that names its device but carries no value
    ]


def test_transformation_events_come_back_whole() -> None:
    raw = _example("JSON/Example_9.6.4-TransformationEvent.jsonld")
    (event,) = parse_document(raw)
    assert event == OtherEvent(type="TransformationEvent", raw=_raw_events(raw)[0])


# the simple-context copies of the sensor examples that GS1 changed beyond the @context
SIMPLE_CONTEXT_CHANGES = {
    "SensorDataExample12.jsonld": "adds type epcis:SensorElement (kept raw: TransformationEvent)",
    "SensorDataExample13.jsonld": "names the GTIN, not the serialised item (no /21/12345)",
    "SensorDataExample17.jsonld": "names the GTIN, not the serialised item (no /21/12345)",
}


def _simple_context_names() -> list[Any]:
    names = sorted(path.name for path in _example_paths() if "simple-context" in str(path))
    return names or [pytest.param(None, id="MISSING")]


@pytest.mark.parametrize("name", _simple_context_names())
def test_both_json_ld_contexts_give_the_same_events(name: str | None) -> None:
    if name is None:
        _require(None)
    full = parse_document(_example(f"JSON/WithSensorData/{name}"))
    simple = parse_document(_example(f"JSON-simple-context/WithSensorData/{name}"))
    assert (full != simple) == (name in SIMPLE_CONTEXT_CHANGES), SIMPLE_CONTEXT_CHANGES.get(name)


# --- (3) round trip -------------------------------------------------------------------------


def test_export_then_import_gives_the_same_day_back() -> None:
    events = list(_day().values())
    assert parse_document(_wire(document(events, CREATED))) == events


@pytest.mark.parametrize("path", _examples())
def test_imported_examples_export_and_import_unchanged(path: Path | None) -> None:
    events = parse_document(_load(_require(path)))
    assert parse_document(_wire(document(events, CREATED))) == events
