"""Identifiers as EPCIS writes and reads them: EPC URNs when the tag decodes, Digital Link
otherwise; our read points and zones as URNs; what an EPC names, or None."""

from __future__ import annotations

from cloud.domain.epcis.ids import (
    READ_POINT,
    Subject,
    item_uri,
    local_id,
    read_point_uri,
    subject_of,
    unit_uri,
    zone_uri,
)
from edge.gs1 import encode_sgtin96, encode_sscc96

GTIN = "09506000134352"
SSCC = "095060001343520017"


def test_items_are_epc_urns_when_the_tag_decodes_else_digital_links() -> None:
    tag = encode_sgtin96(GTIN, 7, company_prefix_length=7)
    assert item_uri(GTIN, "7", tag) == "urn:epc:id:sgtin:9506000.013435.7"
    assert item_uri(GTIN, "A/7", None) == f"https://id.gs1.org/01/{GTIN}/21/A%2F7"
    assert item_uri(GTIN, "8", tag).startswith("https://")  # the tag names another serial
    assert item_uri(GTIN, "7", "E2801160600002").startswith("https://")  # not SGTIN-96


def test_what_an_epc_names_reads_back() -> None:
    tag = encode_sgtin96(GTIN, 7, company_prefix_length=7)
    for uri in (item_uri(GTIN, "7", tag), item_uri(GTIN, "A/7", None)):
        assert subject_of(uri) in (Subject(gtin=GTIN, serial="7"), Subject(gtin=GTIN, serial="A/7"))
    pallet = encode_sscc96(SSCC, company_prefix_length=7)
    assert subject_of(unit_uri(SSCC, pallet)) == Subject(sscc=SSCC)
    assert subject_of(unit_uri(SSCC, None)) == Subject(sscc=SSCC)
    assert subject_of("urn:epc:class:lgtin:4012345.012345.998877") is None
    assert subject_of("urn:epc:id:sgtin:bad") is None
    assert subject_of("https://id.gs1.org/01/09506000134353/21/1") is None  # check digit


def test_our_places_round_trip_and_others_stay_as_given() -> None:
    assert local_id(read_point_uri("a cold/door"), READ_POINT) == "a cold/door"
    assert zone_uri("b-cold") == "urn:coldchain:zone:b-cold"
    sgln = "urn:epc:id:sgln:0614141.07346.1234"
    assert local_id(sgln, READ_POINT) == sgln
