"""Register maps: which Modbus registers hold which quantity, and how to decode them.

A register map is data (firmware-configs/sensors/*.yaml); decoding is a lookup table from the
map's data type to a struct format and a register count, in the manner of pymodbus' DATATYPE.
"""

from __future__ import annotations

import struct
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DataType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"


# data type -> (struct format of one value, registers it spans)
_LAYOUT: dict[DataType, tuple[str, int]] = {
    DataType.INT16: ("h", 1),
    DataType.UINT16: ("H", 1),
    DataType.INT32: ("i", 2),
    DataType.UINT32: ("I", 2),
    DataType.FLOAT32: ("f", 2),
}

# data type -> the raw integers it can hold (float32: none checked, any whole number fits)
_BOUNDS: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
}
# What an int16 temperature probe answers when it is disconnected or broken, by convention
# (0x7FFF and 0x8000): sentinels unless the point's map says otherwise (see fault_values).
INT16_EXTREMES = (2**15 - 1, -(2**15))

RegisterKind = Literal["input", "holding"]
Order = Literal["big", "little"]


class Point(BaseModel):
    """One quantity a sensor reports, and where it lives in its registers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quantity: str = Field(pattern=r"^[a-z_]+$")
    unit: str
    table: RegisterKind
    address: int = Field(ge=0, le=0xFFFF)
    data_type: DataType
    scale: float = 1.0
    offset: float = 0.0
    # Values a disconnected or failed probe returns instead of a measurement.
    sentinels: tuple[int, ...] = ()
    # Physical range of the sensor; anything outside is flagged out_of_range.
    valid_min: float | None = None
    valid_max: float | None = None

    @property
    def width(self) -> int:
        """Registers this point spans."""
        return _LAYOUT[self.data_type][1]

    @model_validator(mode="after")
    def _sentinels_fit(self) -> Point:
        """A sentinel the data type cannot hold would never match: a map error, not a no-op."""
        bounds = _BOUNDS.get(self.data_type)
        if bounds is not None:
            low, high = bounds
            for sentinel in self.sentinels:
                if not low <= sentinel <= high:
                    raise ValueError(
                        f"sentinel {sentinel:#x} ({sentinel}) cannot occur in {self.data_type} "
                        f"point {self.quantity!r} ({low}..{high})"
                    )
        return self

    def in_range(self, measured: float) -> bool:
        """Inside the sensor's valid range (a missing bound does not limit)."""
        return (self.valid_min is None or measured >= self.valid_min) and (
            self.valid_max is None or measured <= self.valid_max
        )

    def fault_values(self) -> frozenset[int | float]:
        """Raw values that mean "no measurement": the map's sentinels; for an int16
        temperature point that lists none, 0x7FFF and 0x8000 (-32768), unless its valid
        range explicitly includes what they scale to."""
        if self.sentinels:
            return frozenset(self.sentinels)
        if self.data_type is DataType.INT16 and self.quantity == "temperature":
            ranged = self.valid_min is not None or self.valid_max is not None
            return frozenset(
                raw
                for raw in INT16_EXTREMES
                if not (ranged and self.in_range(raw * self.scale + self.offset))
            )
        return frozenset()


class RegisterMap(BaseModel):
    """How a sensor model lays out its measurements in Modbus registers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    manufacturer: str
    source: str = Field(description="Where the map was taken from (datasheet, manual).")
    byte_order: Order = "big"
    word_order: Order = "big"
    points: tuple[Point, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_overlap(self) -> RegisterMap:
        taken: dict[tuple[str, int], str] = {}
        for point in self.points:
            for address in range(point.address, point.address + point.width):
                other = taken.setdefault((point.table, address), point.quantity)
                if other != point.quantity:
                    raise ValueError(
                        f"{point.quantity} at {point.table} register {address} overlaps "
                        f"{other} ({point.data_type} spans {point.width} registers)"
                    )
        return self

    def blocks(self) -> list[tuple[RegisterKind, int, int]]:
        """Contiguous (register kind, first address, count) spans to read in one request each."""
        spans: list[tuple[RegisterKind, int, int]] = []
        for kind in ("input", "holding"):
            points = sorted((p for p in self.points if p.table == kind), key=lambda p: p.address)
            if points:
                first = points[0].address
                last = max(p.address + p.width for p in points)
                spans.append((kind, first, last - first))
        return spans


def _to_bytes(registers: list[int], byte_order: Order, word_order: Order) -> bytes:
    words = list(registers) if word_order == "big" else list(reversed(registers))
    return b"".join(w.to_bytes(2, byte_order) for w in words)


def _from_bytes(raw: bytes, byte_order: Order, word_order: Order) -> list[int]:
    words = [int.from_bytes(raw[i : i + 2], byte_order) for i in range(0, len(raw), 2)]
    return words if word_order == "big" else list(reversed(words))


def decode_raw(registers: list[int], point: Point, rmap: RegisterMap) -> int | float:
    """The raw number in a point's registers, before scale and offset."""
    fmt, count = _LAYOUT[point.data_type]
    if len(registers) != count:
        raise ValueError(
            f"{point.quantity}: {point.data_type} needs {count} registers, got {len(registers)}"
        )
    value: int | float = struct.unpack(
        ">" + fmt, _to_bytes(registers, rmap.byte_order, rmap.word_order)
    )[0]
    return value


def encode_value(value: float, point: Point, rmap: RegisterMap) -> list[int]:
    """Registers that decode to `value` (used by the sensor simulator)."""
    fmt, _ = _LAYOUT[point.data_type]
    raw = (value - point.offset) / point.scale
    number: int | float = raw if point.data_type == DataType.FLOAT32 else round(raw)
    return _from_bytes(struct.pack(">" + fmt, number), rmap.byte_order, rmap.word_order)


def scaled(raw: int | float, point: Point) -> float:
    """Engineering value of a raw register number."""
    return raw * point.scale + point.offset
