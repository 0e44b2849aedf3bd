"""EPCIS 2.0 mapping with plain values: the event rules, the export shape, the import paths."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cloud.domain.epcis import (
    CELSIUS,
    EPCIS_CONTEXT,
    TEMPERATURE,
    AggregationEvent,
    EpcisError,
    ObjectEvent,
    OtherEvent,
    SensorElement,
    SensorReport,
    document,
    event_json,
    parse_document,
)

CET = timezone(timedelta(hours=1))
T0 = datetime(2024, 3, 4, 8, 15, 0, tzinfo=CET)
ITEMS = ("urn:epc:id:sgtin:4012345.011111.1001", "urn:epc:id:sgtin:4012345.011111.1002")
PALLET = "urn:epc:id:sscc:4012345.0000000001"
DOCK = "urn:epc:id:sgln:4012345.00001.1"
COLD_ROOM = "urn:epc:id:sgln:4012345.00002.0"
LOGGER = "urn:epc:id:giai:4012345.9001"


def _observe(**changes: Any) -> ObjectEvent:
    values: dict[str, Any] = {
        "event_time": T0,
        "event_time_zone_offset": "+01:00",
        "action": "OBSERVE",
        "epc_list": ITEMS,
        "biz_step": "receiving",
        "read_point": DOCK,
    }
    return ObjectEvent(**(values | changes))


def _storing() -> ObjectEvent:
    return _observe(
        biz_step="storing",
        disposition="sellable_not_accessible",
        read_point=COLD_ROOM,
        biz_location=COLD_ROOM,
        sensor_elements=(
            SensorElement(
                time=T0,
                device_id=LOGGER,
                reports=(SensorReport(type=TEMPERATURE, value=4.5, uom=CELSIUS),),
            ),
            SensorElement(
                start_time=T0 - timedelta(hours=1),
                end_time=T0,
                device_id=LOGGER,
                reports=(
                    SensorReport(
                        type=TEMPERATURE, min_value=3.9, max_value=6.2, mean_value=5.1, uom=CELSIUS
                    ),
                ),
            ),
        ),
    )


def _doc(*events: dict[str, Any], kind: str = "EPCISDocument") -> dict[str, Any]:
    return {"type": kind, "schemaVersion": "2.0", "epcisBody": {"eventList": list(events)}}


def _raw_observe(**changes: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2024-03-04T08:15:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "action": "OBSERVE",
        "epcList": list(ITEMS),
    } | changes


def _sensed(*reports: dict[str, Any], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    element = {"sensorReport": list(reports)} | ({"sensorMetadata": metadata} if metadata else {})
    return _raw_observe(sensorElementList=[element])


# --- the events -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event_time": datetime(2024, 3, 4, 8, 15)}, "eventTime"),
        ({"event_time_zone_offset": "+1:00"}, "eventTimeZoneOffset"),
        ({"event_time_zone_offset": "+15:00"}, "eventTimeZoneOffset"),
        ({"action": "MOVE"}, "action"),
        ({"epc_list": ("4012345.011111.1001",)}, "epcList[0]"),
        ({"epc_list": (ITEMS[0], ITEMS[0])}, "epcList"),
        ({"biz_step": "recieving"}, "bizStep"),
        ({"biz_step": "urn:epcglobal:cbv:bizstep:teleporting"}, "bizStep"),
        ({"disposition": "frozen solid"}, "disposition"),
        ({"read_point": "dock door 1"}, "readPoint.id"),
    ],
)
def test_an_event_refuses_bad_values_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(EpcisError) as caught:
        _observe(**changes)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_cbv_uris_become_the_bare_terms_of_the_json_ld_context() -> None:
    event = _observe(
        biz_step="urn:epcglobal:cbv:bizstep:shipping",
        disposition="https://ref.gs1.org/cbv/Disp-in_transit",
    )
    assert (event.biz_step, event.disposition) == ("shipping", "in_transit")
    assert _observe(biz_step="https://example.com/bizstep/qa_release").biz_step.endswith("release")


@pytest.mark.parametrize(
    "spelling", ["Temperature", "gs1:Temperature", "https://gs1.org/voc/Temperature"]
)
def test_a_temperature_report_reads_the_same_in_every_spelling(spelling: str) -> None:
    assert SensorReport(type=spelling, value=5, uom="CEL").type == TEMPERATURE


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"value": True}, "value"),
        ({"value": float("nan")}, "value"),
        ({"min_value": 8.0, "max_value": 2.0}, "minValue"),
        ({"uom": "celsius"}, "uom"),
        ({"type": "https://gs1.org/voc/Warmth"}, "type"),
        ({"time": datetime(2024, 3, 4)}, "time"),
    ],
)
def test_a_sensor_report_refuses_bad_values(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(EpcisError) as caught:
        SensorReport(**({"type": TEMPERATURE, "uom": CELSIUS} | changes))
    assert caught.value.field == field


def test_a_sensor_element_needs_reports_and_an_ordered_interval() -> None:
    with pytest.raises(EpcisError, match="sensorReport"):
        SensorElement(reports=())
    with pytest.raises(EpcisError, match="startTime is after endTime"):
        SensorElement(
            start_time=T0,
            end_time=T0 - timedelta(minutes=1),
            reports=(SensorReport(type=TEMPERATURE, min_value=2, max_value=3, uom=CELSIUS),),
        )


def test_events_are_hashable_values_and_take_lists() -> None:
    event = _observe(epc_list=list(ITEMS))
    assert event.epc_list == ITEMS
    assert {event, _observe()} == {event}


# --- export ---------------------------------------------------------------------------------


def test_the_document_is_epcis_2_json_ld() -> None:
    doc = document([_observe()], datetime(2024, 3, 4, 9, 0, tzinfo=UTC))
    assert doc["@context"] == [EPCIS_CONTEXT]
    assert (doc["type"], doc["schemaVersion"]) == ("EPCISDocument", "2.0")
    assert doc["creationDate"] == "2024-03-04T09:00:00.000Z"
    assert json.loads(json.dumps(doc)) == doc
    with pytest.raises(EpcisError, match="creationDate"):
        document([], datetime(2024, 3, 4, 9, 0))


def test_an_object_event_is_written_at_its_own_offset_without_empty_fields() -> None:
    utc_time = _observe(event_time=T0.astimezone(UTC))
    assert event_json(utc_time) == {
        "type": "ObjectEvent",
        "eventTime": "2024-03-04T08:15:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "epcList": list(ITEMS),
        "action": "OBSERVE",
        "bizStep": "receiving",
        "readPoint": {"id": DOCK},
    }


def test_sensor_elements_are_written_as_sensor_metadata_and_reports() -> None:
    elements = event_json(_storing())["sensorElementList"]
    assert elements[0] == {
        "sensorMetadata": {"time": "2024-03-04T08:15:00.000+01:00", "deviceID": LOGGER},
        "sensorReport": [{"type": "Temperature", "value": 4.5, "uom": "CEL"}],
    }
    assert elements[1]["sensorMetadata"]["startTime"] == "2024-03-04T07:15:00.000+01:00"
    assert elements[1]["sensorReport"] == [
        {"type": "Temperature", "minValue": 3.9, "maxValue": 6.2, "meanValue": 5.1, "uom": "CEL"}
    ]


def test_an_aggregation_writes_its_parent_and_children() -> None:
    packed = AggregationEvent(
        event_time=T0,
        event_time_zone_offset="+01:00",
        action="ADD",
        parent_id=PALLET,
        child_epcs=ITEMS,
        biz_step="packing",
    )
    unpacked = AggregationEvent(
        event_time=T0, event_time_zone_offset="+01:00", action="DELETE", parent_id=PALLET
    )
    assert event_json(packed)["parentID"] == PALLET
    assert event_json(packed)["childEPCs"] == list(ITEMS)
    assert "childEPCs" not in event_json(unpacked)  # DELETE without children: all of them


def test_microseconds_survive_and_other_events_go_back_as_received() -> None:
    precise = _observe(event_time=T0.replace(microsecond=123456))
    assert event_json(precise)["eventTime"] == "2024-03-04T08:15:00.123456+01:00"
    other = OtherEvent(type="TransactionEvent", raw={"type": "TransactionEvent", "x": [1]})
    assert event_json(other) == {"type": "TransactionEvent", "x": [1]}


# --- import ---------------------------------------------------------------------------------


def test_an_object_event_is_mapped_and_keeps_what_it_does_not_map() -> None:
    raw = _raw_observe(
        bizStep="urn:epcglobal:cbv:bizstep:receiving",
        readPoint={"id": DOCK},
        bizTransactionList=[{"type": "po", "bizTransaction": "urn:epc:id:gdti:4012345.00001.1"}],
    )
    (event,) = parse_document(_doc(raw))
    assert event == _observe()
    assert event.raw == raw
    assert event.raw is not raw


def test_a_query_document_is_read_from_its_results_body() -> None:
    doc = _doc(kind="EPCISQueryDocument")
    doc["epcisBody"] = {
        "queryResults": {
            "queryName": "SimpleEventQuery",
            "resultsBody": {"eventList": [_raw_observe()]},
        }
    }
    assert [type(event) for event in parse_document(doc)] == [ObjectEvent]


def test_other_event_types_come_back_whole() -> None:
    transaction = {"type": "TransactionEvent", "eventTime": "2024-03-04T08:15:00Z", "x": 1}
    custom = {"type": "https://example.com/RecallEvent", "reason": "mislabelled"}
    events = parse_document(_doc(transaction, custom))
    assert events == [
        OtherEvent(type="TransactionEvent", raw=transaction),
        OtherEvent(type="https://example.com/RecallEvent", raw=custom),
    ]


def test_rfc_3339_times_in_lower_case_and_with_any_fraction_are_read() -> None:
    (event,) = parse_document(_doc(_raw_observe(eventTime="2024-03-04t07:15:00.5z")))
    assert event.event_time == datetime(2024, 3, 4, 7, 15, 0, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("document_", "message"),
    [
        ([], "document: not a JSON object"),
        ({"type": "EPCISMasterDataDocument"}, "type: not EPCISDocument"),
        (_doc() | {"schemaVersion": "1.2"}, "schemaVersion: EPCIS 1.2 is not EPCIS 2.x"),
        ({"type": "EPCISDocument", "epcisBody": {}}, "epcisBody.eventList: missing"),
        (_doc(kind="EPCISQueryDocument"), "epcisBody.queryResults: missing"),
        (_doc(_raw_observe(), "ObjectEvent"), "event 1: not a JSON object"),
        (_doc({"eventTime": "2024-03-04T08:15:00Z"}), "event 0: type: missing"),
        (_doc(_raw_observe(eventTime="2024-03-04")), "event 0: eventTime: not an RFC 3339"),
        (_doc(_raw_observe(eventTimeZoneOffset=None)), "event 0: eventTimeZoneOffset: missing"),
        (_doc(_raw_observe(action="MOVE")), "event 0: action: not one of"),
        (_doc(_raw_observe(epcList="urn:epc:id:sgtin:1.2.3")), "event 0: epcList: not a list"),
        (_doc(_raw_observe(readPoint={"name": "dock"})), "event 0: readPoint.id: missing"),
        (
            _doc(_raw_observe(), _raw_observe(sensorElementList=[{"sensorReport": []}])),
            "event 1: sensorElementList[0].sensorReport: needs at least one",
        ),
        (
            _doc(_sensed({"type": "Temperature"}, {"type": "Temperature", "value": "4"})),
            "event 0: sensorElementList[0].sensorReport[1].value: not a number: '4'",
        ),
        (
            _doc(_sensed({"type": "Temperature", "uom": "celsius"})),
            "event 0: sensorElementList[0].sensorReport[0].uom: not a UN/CEFACT unit code",
        ),
        (
            _doc(_sensed({"type": "Temperature"}, metadata={"time": "noon"})),
            "event 0: sensorElementList[0].sensorMetadata.time: not an RFC 3339",
        ),
    ],
)
def test_a_malformed_document_is_refused_naming_the_event_and_field(
    document_: Any, message: str
) -> None:
    with pytest.raises(EpcisError) as caught:
        parse_document(document_)
    assert str(caught.value).startswith(message)


def test_the_schema_version_may_be_missing_or_a_number() -> None:
    for version in (None, 2.0, "2.0.1"):
        assert len(parse_document(_doc(_raw_observe()) | {"schemaVersion": version})) == 1


# --- both ways ------------------------------------------------------------------------------


def test_export_then_import_gives_the_same_events() -> None:
    packed = AggregationEvent(
        event_time=T0 + timedelta(minutes=30),
        event_time_zone_offset="+01:00",
        action="ADD",
        parent_id=PALLET,
        child_epcs=ITEMS,
        biz_step="packing",
        disposition="in_progress",
        read_point=DOCK,
        event_id="urn:uuid:6f1c2a8e-3d4b-4c55-9a9e-0d6f0c1b2a3d",
    )
    events = [_observe(), _storing(), packed]
    text = json.dumps(document(events, datetime(2024, 3, 4, 9, 0, tzinfo=UTC)))
    assert parse_document(json.loads(text)) == events
