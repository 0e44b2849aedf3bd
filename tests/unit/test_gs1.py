"""GS1 decoding against the external conformance vectors in tests/fixtures/conformance/gs1.

Every case of every section is its own test. The vectors come from the GS1 EPC Tag Data
Standard, the GS1 Syntax Engine, biip, epc-tds, epcpy and Nike epc-standards (each case names
its source). If a vector file is missing, the tests fail with a message saying so.
"""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from edge import gs1
from edge.gs1 import ElementStringError, EpcError, Sgtin, Sscc, Symbology
from edge.gs1.dictionary import AI_TABLE, DICTIONARY_RELEASE, parse_syntax_dictionary
from edge.gs1.epc import SGTIN_PARTITIONS, SSCC_PARTITIONS
from edge.gs1.lint import LINTERS, UNCHECKED_LINTERS

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT / "tests" / "fixtures" / "conformance" / "gs1"
EPC_VECTORS = "epc_tds_vectors.json"
ELEMENT_VECTORS = "element_string_vectors.json"
DICTIONARY = "gs1-syntax-dictionary.txt"
GS = gs1.GS


def _missing(name: str) -> str:
    return (
        f"GS1 conformance file {CONFORMANCE / name} is missing: tests/fixtures/conformance/gs1 "
        "holds the external vectors these tests prove (see the README there)"
    )


@cache
def _read(name: str) -> str | None:
    path = CONFORMANCE / name
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _vectors(name: str) -> dict[str, Any] | None:
    text = _read(name)
    return None if text is None else json.loads(text)


def _label(value: object) -> str:
    text = ascii(value)[1:-1].replace("\\x1d", "<GS>")
    return text if len(text) <= 48 else text[:45] + "..."


def _cases(name: str, section: str, key: str) -> list[Any]:
    """One pytest param per case; a single failing placeholder if the file is missing."""
    vectors = _vectors(name)
    if vectors is None:
        return [pytest.param(None, id=f"{section}-MISSING")]
    return [
        pytest.param(case, id=f"{index:02d}:{_label(case[key])}")
        for index, case in enumerate(vectors[section])
    ]


def _given(case: dict[str, Any] | None, name: str) -> dict[str, Any]:
    if case is None:
        pytest.fail(_missing(name), pytrace=False)
    return case


def _expect_error(error: ValueError) -> None:
    """A rejection must explain itself."""
    assert str(error).strip(), "error raised without a message"


# --- the vector files themselves ----------------------------------------------------------

HANDLED_SECTIONS = {
    EPC_VECTORS: {"description", "partition_tables", "vectors", "not_encodable_sgtin96"},
    ELEMENT_VECTORS: {
        "sources",
        "notes",
        "scan_data_to_ai_data",
        "bracketed_to_fnc1_form",
        "fnc1_form_validate",
        "lint_yymmd0_AI17_date",
        "lint_csum_check_digit",
        "biip_messages_to_hri",
        "biip_dates",
        "biip_hri_to_raw",
    },
}


@pytest.mark.parametrize("name", [EPC_VECTORS, ELEMENT_VECTORS, DICTIONARY])
def test_conformance_file_is_present(name: str) -> None:
    if _read(name) is None:
        pytest.fail(_missing(name), pytrace=False)


@pytest.mark.parametrize("name", sorted(HANDLED_SECTIONS))
def test_every_vector_section_is_exercised(name: str) -> None:
    vectors = _vectors(name)
    if vectors is None:
        pytest.fail(_missing(name), pytrace=False)
    assert set(vectors) == HANDLED_SECTIONS[name], "new or renamed vector sections"


# --- EPC: SGTIN-96 / SSCC-96 --------------------------------------------------------------


def _partition_cases() -> list[Any]:
    vectors = _vectors(EPC_VECTORS)
    if vectors is None:
        return [pytest.param(None, None, None, id="partition-MISSING")]
    tables = vectors["partition_tables"]
    return [
        pytest.param(scheme, int(partition), widths, id=f"{scheme}-{partition}")
        for scheme in ("sgtin", "sscc")
        for partition, widths in tables[scheme].items()
    ]


@pytest.mark.parametrize(("scheme", "partition", "widths"), _partition_cases())
def test_partition_table(scheme: str | None, partition: int, widths: list[int]) -> None:
    if scheme is None:
        pytest.fail(_missing(EPC_VECTORS), pytrace=False)
    table = SGTIN_PARTITIONS if scheme == "sgtin" else SSCC_PARTITIONS
    assert list(table[partition]) == widths


def test_partition_tables_have_no_extra_values() -> None:
    vectors = _vectors(EPC_VECTORS)
    if vectors is None:
        pytest.fail(_missing(EPC_VECTORS), pytrace=False)
    tables = vectors["partition_tables"]
    assert set(SGTIN_PARTITIONS) == {int(p) for p in tables["sgtin"]}
    assert set(SSCC_PARTITIONS) == {int(p) for p in tables["sscc"]}


def _decoded_fields(epc: Sgtin | Sscc) -> dict[str, object]:
    """The decoded EPC in the vocabulary of the vectors' independent_decode records."""
    fields: dict[str, object] = {
        "scheme": epc.scheme,
        "filter": epc.filter_value,
        "partition": epc.partition,
        "company_prefix": epc.company_prefix,
        "pure_uri": epc.pure_identity_uri,
        "tag_uri": epc.tag_uri,
        "element_string": epc.element_string,
    }
    if isinstance(epc, Sgtin):
        fields |= {"item_ref": epc.item_reference, "serial": epc.serial, "gtin": epc.gtin}
    else:
        fields |= {"serial_ref": epc.serial_reference, "sscc": epc.sscc}
    return fields


@pytest.mark.parametrize("case", _cases(EPC_VECTORS, "vectors", "hex"))
def test_epc_vector_decodes(case: dict[str, Any] | None) -> None:
    case = _given(case, EPC_VECTORS)
    fields = _decoded_fields(gs1.decode_epc(case["hex"]))
    for key, expected in case["expect"].items():
        assert fields[key] == expected, key
    for key, expected in case["independent_decode"].items():
        assert fields[key] == expected, key
    assert case["crosscheck"] == "agree"


@pytest.mark.parametrize("case", _cases(EPC_VECTORS, "vectors", "hex"))
def test_epc_vector_encodes(case: dict[str, Any] | None) -> None:
    case = _given(case, EPC_VECTORS)
    decoded = case["independent_decode"]
    epc = gs1.parse_epc_uri(decoded["tag_uri"])
    assert epc.hex == case["hex"].upper()
    assert gs1.parse_epc_uri(decoded["pure_uri"], decoded["filter"]) == epc
    prefix_length = len(decoded["company_prefix"])
    if decoded["scheme"] == "sgtin-96":
        hex_string = gs1.encode_sgtin96(
            decoded["gtin"], decoded["serial"], prefix_length, decoded["filter"]
        )
    else:
        hex_string = gs1.encode_sscc96(decoded["sscc"], prefix_length, decoded["filter"])
    assert hex_string == case["hex"].upper()


@pytest.mark.parametrize("case", _cases(EPC_VECTORS, "not_encodable_sgtin96", "pure_uri"))
def test_serial_sgtin96_cannot_encode(case: dict[str, Any] | None) -> None:
    case = _given(case, EPC_VECTORS)
    with pytest.raises(EpcError, match="SGTIN-96 cannot encode serial") as raised:
        gs1.parse_epc_uri(case["pure_uri"], filter_value=1)
    _expect_error(raised.value)


def test_sgtin96_from_gtin_and_serial() -> None:
    hex_string = gs1.encode_sgtin96("80614141123458", 6789, company_prefix_length=7, filter_value=3)
    assert hex_string == "3074257BF7194E4000001A85"
    epc = gs1.decode_epc(hex_string.lower())
    assert isinstance(epc, Sgtin)
    assert (epc.gtin, epc.serial) == ("80614141123458", "6789")


def test_largest_sgtin96_serial_round_trips() -> None:
    epc = gs1.decode_epc(gs1.encode_sgtin96("80614141123458", 274877906943, 7))
    assert isinstance(epc, Sgtin) and epc.serial == "274877906943"
    with pytest.raises(EpcError, match="greater than 274877906943"):
        gs1.encode_sgtin96("80614141123458", 274877906944, 7)


@pytest.mark.parametrize(
    ("hex_string", "message"),
    [
        ("3074257BF7194E4000001A8", "24 hex digits"),
        ("3074257BF7194E4000001A8500", "24 hex digits"),
        ("3074257BF7194E4000001A8G", "hexadecimal"),
        ("", "hexadecimal"),
        ("E274257BF7194E4000001A85", "unknown EPC header 0xE2"),
        ("3674257BF7194E4000001A85", "SGTIN-198"),
        ("307C257BF7194E4000001A85", "partition value 7"),
        ("3003FFFFFFFFFC4000000005", "company prefix field"),
    ],
)
def test_bad_epc_is_rejected_with_reason(hex_string: str, message: str) -> None:
    with pytest.raises(EpcError, match=message):
        gs1.decode_epc(hex_string)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gs1.encode_sgtin96("80614141123459", 1, 7), "check digit"),
        (lambda: gs1.encode_sgtin96("80614141123458", 1, 13), "company prefix length"),
        (lambda: gs1.encode_sgtin96("80614141123458", 1, 7, filter_value=8), "filter value"),
        (lambda: gs1.encode_sscc96("106141412345678909", 7), "check digit"),
        (lambda: gs1.parse_epc_uri("urn:epc:id:sgtin:0614141.812345"), "CompanyPrefix"),
        (lambda: gs1.parse_epc_uri("urn:epc:id:sscc:0614141.123"), "serial reference"),
        (lambda: gs1.parse_epc_uri("urn:epc:id:giai:0614141.1"), "not an SGTIN or SSCC"),
    ],
)
def test_bad_encoding_input_is_rejected_with_reason(call: Any, message: str) -> None:
    with pytest.raises(EpcError, match=message):
        call()


# --- element strings: GS1 Syntax Engine vectors --------------------------------------------


@pytest.mark.parametrize("case", _cases(ELEMENT_VECTORS, "scan_data_to_ai_data", "scan_data"))
def test_scan_data(case: dict[str, Any] | None) -> None:
    case = _given(case, ELEMENT_VECTORS)
    if not case["ok"]:
        assert case["symbology"] == "NONE" and case["expect_ai_data"] == ""
        with pytest.raises(ElementStringError) as raised:
            gs1.parse_scan(case["scan_data"])
        _expect_error(raised.value)
        return
    scan = gs1.parse_scan(case["scan_data"])
    assert scan.symbology == case["symbology"]
    assert scan.data_str == case["expect_ai_data"]


@pytest.mark.parametrize("case", _cases(ELEMENT_VECTORS, "bracketed_to_fnc1_form", "bracketed"))
def test_bracketed_to_fnc1_form(case: dict[str, Any] | None) -> None:
    case = _given(case, ELEMENT_VECTORS)
    if not case["ok"]:
        with pytest.raises(ElementStringError) as raised:
            gs1.parse_bracketed(case["bracketed"])
        _expect_error(raised.value)
        return
    parsed = gs1.parse_bracketed(case["bracketed"])
    assert parsed.data_str == case["expect_fnc1_form"]
    assert gs1.parse_ai_data(parsed.data_str).elements == parsed.elements
    assert gs1.parse_bracketed(parsed.bracketed()) == parsed


@pytest.mark.parametrize("case", _cases(ELEMENT_VECTORS, "fnc1_form_validate", "fnc1_form"))
def test_fnc1_form_validation(case: dict[str, Any] | None) -> None:
    case = _given(case, ELEMENT_VECTORS)
    if not case["ok"]:
        with pytest.raises(ElementStringError) as raised:
            gs1.parse_ai_data(case["fnc1_form"])
        _expect_error(raised.value)
        return
    parsed = gs1.parse_ai_data(case["fnc1_form"])
    assert parsed.elements
    assert gs1.parse_ai_data("^" + parsed.unbracketed("^")).elements == parsed.elements


@pytest.mark.parametrize("case", _cases(ELEMENT_VECTORS, "lint_yymmd0_AI17_date", "value"))
def test_yymmd0_linter_and_ai17(case: dict[str, Any] | None) -> None:
    case = _given(case, ELEMENT_VECTORS)
    expected = None if case["ok"] else case["error"]
    code = gs1.lint("yymmd0", case["value"])
    assert (None if code is None else f"GS1_LINTER_{code}") == expected
    if case["ok"]:
        assert gs1.parse_ai_data("^17" + case["value"]).expiry is not None
    else:
        with pytest.raises(ElementStringError, match=r"AI \(17\)|no known AI"):
            gs1.parse_ai_data("^17" + case["value"])


@pytest.mark.parametrize("case", _cases(ELEMENT_VECTORS, "lint_csum_check_digit", "value"))
def test_check_digit_linter(case: dict[str, Any] | None) -> None:
    case = _given(case, ELEMENT_VECTORS)
    expected = None if case["ok"] else case["error"]
    code = gs1.lint("csum", case["value"])
    assert (None if code is None else f"GS1_LINTER_{code}") == expected
    if case["ok"]:
        assert gs1.check_digit(case["value"][:-1]) == case["value"][-1]


# --- element strings: biip vectors ---------------------------------------------------------


@pytest.mark.parametrize("case", _cases(ELEMENT_VECTORS, "biip_messages_to_hri", "value"))
def test_biip_message_to_hri(case: dict[str, Any] | None) -> None:
    case = _given(case, ELEMENT_VECTORS)
    parsed = gs1.parse_element_string(case["value"], separators=tuple(case["separator"]))
    assert parsed.bracketed() == case["expect_hri"]


@pytest.mark.parametrize("case", _cases(ELEMENT_VECTORS, "biip_dates", "element"))
def test_biip_dates(case: dict[str, Any] | None) -> None:
    case = _given(case, ELEMENT_VECTORS)
    ai = case["element"][:2]
    if "expect_date" not in case:
        assert case["expect"].startswith("ParseError")
        with pytest.raises(ElementStringError, match=rf"AI \({ai}\): illegal day") as raised:
            gs1.parse_element_string(case["element"])
        assert raised.value.ai == ai and raised.value.linter_error == "ILLEGAL_DAY"
        return
    parsed = gs1.parse_element_string(case["element"])
    assert parsed.date_of(ai) == date.fromisoformat(case["expect_date"])


@pytest.mark.parametrize("case", _cases(ELEMENT_VECTORS, "biip_hri_to_raw", "hri"))
def test_biip_hri_to_raw(case: dict[str, Any] | None) -> None:
    case = _given(case, ELEMENT_VECTORS)
    parsed = gs1.parse_bracketed(case["hri"])
    assert parsed.unbracketed() == case["expect_raw"]
    assert gs1.parse_element_string(case["expect_raw"]).elements == parsed.elements
    if "expect_date" in case:
        assert parsed.expiry == date.fromisoformat(case["expect_date"])


# --- the Syntax Dictionary ------------------------------------------------------------------


def test_embedded_ai_table_matches_the_syntax_dictionary() -> None:
    text = _read(DICTIONARY)
    if text is None:
        pytest.fail(_missing(DICTIONARY), pytrace=False)
    assert f"# Release: {DICTIONARY_RELEASE}" in text
    assert parse_syntax_dictionary(text) == AI_TABLE


def test_every_dictionary_linter_is_implemented_or_listed_unchecked() -> None:
    names = {n for entry in AI_TABLE.values() for c in entry.components for n in c.linters}
    assert names - set(LINTERS) == UNCHECKED_LINTERS


# --- the medical-device case, by hand -----------------------------------------------------

UDI_SCAN = "]d2" + "0109506000134352" + "17271200" + "10LOT-42A" + GS + "21SN000123"


def test_datamatrix_udi_gives_gtin_expiry_lot_and_serial() -> None:
    udi = gs1.parse_scan(UDI_SCAN)
    assert udi.symbology is Symbology.DATAMATRIX
    assert udi.gtin == "09506000134352"
    assert udi.expiry == date(2027, 12, 31)  # DD=00: last day of the month
    assert udi.lot == "LOT-42A"
    assert udi.serial == "SN000123"
    assert udi.bracketed() == "(01)09506000134352(17)271200(10)LOT-42A(21)SN000123"
    assert [e.title for e in udi.elements][:2] == ["GTIN", "USE BY or EXPIRY"]
    udi.check_associations()


def test_same_udi_from_every_carrier_and_form() -> None:
    udi = gs1.parse_scan(UDI_SCAN).elements
    assert gs1.parse_scan(UDI_SCAN.replace("]d2", "]C1")).elements == udi
    assert gs1.parse_scan(UDI_SCAN.replace("]d2", "]Q3")).elements == udi
    assert gs1.parse_element_string(UDI_SCAN[3:]).elements == udi
    assert (
        gs1.parse_bracketed("(01)09506000134352(17)271200(10)LOT-42A(21)SN000123").elements == udi
    )
    link = "https://id.gs1.org/01/09506000134352/10/LOT-42A/21/SN000123?17=271200"
    by_link = gs1.parse_scan("]Q1" + link)
    assert by_link.data_str == link
    assert sorted(by_link.elements, key=lambda e: e.ai) == sorted(udi, key=lambda e: e.ai)


@pytest.mark.parametrize(
    ("scan", "message"),
    [
        ("]d20109506000134353" + "17271231", r"AI \(01\): incorrect check digit"),
        ("]d20109506000134352" + "17271331", r"AI \(17\): illegal month"),
        ("]d20109506000134352" + "17270230", r"AI \(17\): illegal day"),
        ("]d20109506000134352" + "1727123", r"AI \(17\).*too short"),
        ("]d20109506000134352" + "10" + "L" * 21, r"AI \(10\).*longer than format X\.\.20"),
        ("]d20109506000134352" + "10AB CD", r"AI \(10\): invalid cset82 character"),
        ("]d2" + "0109506000134352" + "89ABC", "no known AI"),
        ("0109506000134352", "symbology identifier"),
    ],
)
def test_bad_udi_is_rejected_naming_the_ai(scan: str, message: str) -> None:
    with pytest.raises(ElementStringError, match=message):
        gs1.parse_scan(scan)


def test_pairing_rules_are_checked_on_request() -> None:
    lone_expiry = gs1.parse_bracketed("(17)271231(10)LOT1")
    with pytest.raises(ElementStringError, match=r"AI \(10\): requires one of 01"):
        lone_expiry.check_associations()
    with pytest.raises(ElementStringError, match="different values"):
        gs1.parse_bracketed("(01)09506000134352(10)A(10)B").check_associations()


def test_sscc_from_a_gs1_128_pallet_label() -> None:
    label = gs1.parse_scan("]C1" + "00106141412345678908")
    assert label.sscc == "106141412345678908"
    epc = gs1.decode_epc("3174257BF4499602D2000000")
    assert isinstance(epc, Sscc) and epc.sscc == label.sscc
