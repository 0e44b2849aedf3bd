"""Register-map decoding: data types, byte and word order, validation messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.config import load_register_map
from edge.registers import Point, RegisterMap, decode_raw, encode_value, scaled
from tests.conftest import SENSORS


def rmap(byte_order: str, word_order: str, *points: dict) -> RegisterMap:
    return RegisterMap(
        model="m",
        manufacturer="x",
        source="test",
        byte_order=byte_order,
        word_order=word_order,
        points=[Point(**p) for p in points],
    )


FLOAT = {
    "quantity": "humidity",
    "unit": "%RH",
    "table": "holding",
    "address": 0,
    "data_type": "float32",
}


@pytest.mark.parametrize(
    ("byte_order", "word_order", "registers"),
    [
        ("big", "big", [0x41F4, 0x7AE1]),  # ABCD
        ("big", "little", [0x7AE1, 0x41F4]),  # CDAB: Vaisala's least significant word first
        ("little", "big", [0xF441, 0xE17A]),  # BADC
        ("little", "little", [0xE17A, 0xF441]),  # DCBA
    ],
)
def test_float32_in_every_byte_and_word_order(byte_order, word_order, registers) -> None:
    # 0x41F47AE1 is the binary32 of 30.56, the worked example in Vaisala's Modbus reference.
    m = rmap(byte_order, word_order, FLOAT)
    assert decode_raw(registers, m.points[0], m) == pytest.approx(30.56, abs=1e-5)
    assert encode_value(30.56, m.points[0], m) == registers


def test_signed_scaled_int16_and_round_trip() -> None:
    m = load_register_map(SENSORS / "xy-md02.yaml")
    temperature = next(p for p in m.points if p.quantity == "temperature")
    assert decode_raw([0xFF9B], temperature, m) == -101  # two's complement
    assert scaled(-101, temperature) == pytest.approx(-10.1)
    for value in (-39.9, -0.1, 0.0, 4.2, 59.9):
        raw = decode_raw(encode_value(value, temperature, m), temperature, m)
        assert scaled(raw, temperature) == pytest.approx(value)


def test_blocks_cover_points_contiguously() -> None:
    m = load_register_map(SENSORS / "vaisala-hmp4.yaml")
    assert m.blocks() == [("holding", 0, 4)]
    m = load_register_map(SENSORS / "xy-md02.yaml")
    assert m.blocks() == [("input", 1, 2)]


def test_overlapping_points_are_refused_with_the_numbers() -> None:
    with pytest.raises(ValidationError) as caught:
        rmap("big", "big", FLOAT, {**FLOAT, "quantity": "temperature", "address": 1})
    assert "temperature at holding register 1 overlaps humidity (float32 spans 2 registers)" in str(
        caught.value
    )


def test_every_shipped_register_map_is_valid_and_names_its_source() -> None:
    maps = sorted(SENSORS.glob("*.yaml"))
    assert len(maps) >= 4
    for path in maps:
        m = load_register_map(path)
        assert len(m.source) > 20, path
        assert {p.quantity for p in m.points} >= {"temperature", "humidity"}


def _temperature(**fields: object) -> dict[str, object]:
    base = {"quantity": "temperature", "unit": "C", "table": "input", "address": 1}
    return {**base, "data_type": "int16", "scale": 0.1, **fields}


@pytest.mark.parametrize(
    ("data_type", "sentinel", "message"),
    [
        ("int16", 0x8000, "sentinel 0x8000 (32768) cannot occur in int16 point 'temperature'"),
        ("int16", -0x8001, "sentinel -0x8001 (-32769) cannot occur in int16 point"),
        ("uint16", -1, "sentinel -0x1 (-1) cannot occur in uint16 point 'temperature' (0..65535)"),
        ("int32", 2**31, "cannot occur in int32 point 'temperature' (-2147483648..2147483647)"),
    ],
)
def test_a_sentinel_its_type_cannot_hold_is_refused(
    data_type: str, sentinel: int, message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Point(**_temperature(data_type=data_type, sentinels=[sentinel]))


def test_int16_temperature_extremes_are_sentinels_by_default() -> None:
    assert Point(**_temperature()).fault_values() == {0x7FFF, -0x8000}
    # a range that excludes what they scale to: still faults, never a flagged temperature
    assert Point(**_temperature(valid_min=-40, valid_max=60)).fault_values() == {
        0x7FFF,
        -0x8000,
    }
    # a fine scale whose range includes them: they are measurements
    fine = Point(**_temperature(scale=0.001, valid_min=-40, valid_max=85))
    assert fine.fault_values() == set()  # -32.768 C and 32.767 C are inside the range
    half = Point(**_temperature(scale=0.001, valid_min=-20, valid_max=85))
    assert half.fault_values() == {-0x8000}  # -32.768 C is below it, 32.767 C inside
    # listed sentinels replace the default; other quantities have none by default
    assert Point(**_temperature(sentinels=[-1])).fault_values() == {-1}
    assert Point(**_temperature(quantity="humidity")).fault_values() == set()
