"""EPC binary encodings SGTIN-96 and SSCC-96 per the GS1 EPC Tag Data Standard (TDS 1.13).

decode_epc turns the EPC bank of an RFID tag (hex) into an Sgtin or Sscc, which gives the GS1
key (GTIN-14 / SSCC-18), the pure identity URI, the tag URI and the GS1 element string.
parse_epc_uri, encode_sgtin96 and encode_sscc96 go the other way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, NamedTuple
from urllib.parse import unquote

from edge.gs1.lint import check_digit


class EpcError(ValueError):
    """An EPC that cannot be decoded or encoded; the message says what is wrong."""


class Partition(NamedTuple):
    """Field widths selected by the 3-bit partition value."""

    company_prefix_bits: int
    company_prefix_digits: int
    reference_bits: int
    reference_digits: int


# TDS 1.13 Table 14-2 (SGTIN: indicator + item reference) and Table 14-5 (SSCC: extension
# digit + serial reference), keyed by partition value.
SGTIN_PARTITIONS: dict[int, Partition] = {
    0: Partition(40, 12, 4, 1),
    1: Partition(37, 11, 7, 2),
    2: Partition(34, 10, 10, 3),
    3: Partition(30, 9, 14, 4),
    4: Partition(27, 8, 17, 5),
    5: Partition(24, 7, 20, 6),
    6: Partition(20, 6, 24, 7),
}
SSCC_PARTITIONS: dict[int, Partition] = {
    0: Partition(40, 12, 18, 5),
    1: Partition(37, 11, 21, 6),
    2: Partition(34, 10, 24, 7),
    3: Partition(30, 9, 28, 8),
    4: Partition(27, 8, 31, 9),
    5: Partition(24, 7, 34, 10),
    6: Partition(20, 6, 38, 11),
}

SGTIN96_HEADER = 0x30
SSCC96_HEADER = 0x31
SGTIN96_SERIAL_BITS = 38
SGTIN96_MAX_SERIAL = (1 << SGTIN96_SERIAL_BITS) - 1  # 274877906943
EPC96_HEX_DIGITS = 24

# Other EPC header values of TDS 1.13 Table 14-1, named in error messages.
OTHER_EPC_HEADERS = {
    0x2C: "GDTI-96",
    0x2D: "GSRN-96",
    0x2E: "GSRNP-96",
    0x2F: "USDoD-96",
    0x32: "SGLN-96",
    0x33: "GRAI-96",
    0x34: "GIAI-96",
    0x35: "GID-96",
    0x36: "SGTIN-198",
    0x37: "GRAI-170",
    0x38: "GIAI-202",
    0x39: "SGLN-195",
    0x3A: "GDTI-113",
    0x3B: "ADI-var",
    0x3C: "CPI-96",
    0x3D: "CPI-var",
    0x3E: "GDTI-174",
    0x3F: "SGCN-96",
}

_HEX = re.compile(r"[0-9A-Fa-f]+")
_DIGITS = re.compile(r"[0-9]+")


def _require_digits(what: str, text: str, count: int) -> None:
    if not (_DIGITS.fullmatch(text) and len(text) == count):
        raise EpcError(f"{what} must be {count} digits, got {text!r}")


def _check_header_fields(filter_value: int, company_prefix: str) -> int:
    """Validate filter and company prefix; return the partition value."""
    if not 0 <= filter_value <= 7:
        raise EpcError(f"filter value must be 0..7, got {filter_value}")
    if not (_DIGITS.fullmatch(company_prefix) and 6 <= len(company_prefix) <= 12):
        raise EpcError(f"GS1 Company Prefix must be 6 to 12 digits, got {company_prefix!r}")
    return 12 - len(company_prefix)


def _pack(header: int, filter_value: int, partition: int, fields: list[tuple[int, int]]) -> str:
    value, width = (header << 6) | (filter_value << 3) | partition, 14
    for number, bits in fields:
        value, width = (value << bits) | number, width + bits
    return f"{value << (96 - width):0{EPC96_HEX_DIGITS}X}"


@dataclass(frozen=True, slots=True)
class Sgtin:
    """A serialised GTIN as carried by SGTIN-96."""

    filter_value: int
    company_prefix: str
    item_reference: str  # indicator digit followed by the item reference, as in EPC URIs
    serial: str

    scheme: ClassVar[str] = "sgtin-96"

    def __post_init__(self) -> None:
        partition = _check_header_fields(self.filter_value, self.company_prefix)
        digits = SGTIN_PARTITIONS[partition].reference_digits
        _require_digits("indicator + item reference", self.item_reference, digits)
        serial = self.serial
        if not _DIGITS.fullmatch(serial):
            raise EpcError(
                f"SGTIN-96 cannot encode serial {serial!r}: only a decimal number fits in "
                f"{SGTIN96_SERIAL_BITS} bits (alphanumeric serials need SGTIN-198)"
            )
        if serial != "0" and serial.startswith("0"):
            raise EpcError(
                f"SGTIN-96 cannot encode serial {serial!r}: leading zeros are lost in the "
                "integer serial field (use SGTIN-198)"
            )
        if int(serial) > SGTIN96_MAX_SERIAL:
            raise EpcError(
                f"SGTIN-96 cannot encode serial {serial!r}: greater than {SGTIN96_MAX_SERIAL} "
                f"(2^{SGTIN96_SERIAL_BITS} - 1)"
            )

    @property
    def partition(self) -> int:
        """Partition value: 12 minus the company prefix length."""
        return 12 - len(self.company_prefix)

    @property
    def gtin(self) -> str:
        """GTIN-14 with the indicator digit moved to the front and its check digit."""
        body = self.item_reference[0] + self.company_prefix + self.item_reference[1:]
        return body + check_digit(body)

    @property
    def pure_identity_uri(self) -> str:
        """EPC pure identity URI, urn:epc:id:sgtin:CompanyPrefix.ItemRef.Serial."""
        return f"urn:epc:id:sgtin:{self.company_prefix}.{self.item_reference}.{self.serial}"

    @property
    def tag_uri(self) -> str:
        """EPC tag URI, urn:epc:tag:sgtin-96:Filter.CompanyPrefix.ItemRef.Serial."""
        return (
            f"urn:epc:tag:sgtin-96:{self.filter_value}.{self.company_prefix}."
            f"{self.item_reference}.{self.serial}"
        )

    @property
    def element_string(self) -> str:
        """GS1 element string (01)GTIN(21)serial."""
        return f"(01){self.gtin}(21){self.serial}"

    @property
    def hex(self) -> str:
        """The SGTIN-96 EPC as 24 upper-case hex digits."""
        widths = SGTIN_PARTITIONS[self.partition]
        return _pack(
            SGTIN96_HEADER,
            self.filter_value,
            self.partition,
            [
                (int(self.company_prefix), widths.company_prefix_bits),
                (int(self.item_reference), widths.reference_bits),
                (int(self.serial), SGTIN96_SERIAL_BITS),
            ],
        )


@dataclass(frozen=True, slots=True)
class Sscc:
    """A Serial Shipping Container Code as carried by SSCC-96."""

    filter_value: int
    company_prefix: str
    serial_reference: str  # extension digit followed by the serial reference, as in EPC URIs

    scheme: ClassVar[str] = "sscc-96"

    def __post_init__(self) -> None:
        partition = _check_header_fields(self.filter_value, self.company_prefix)
        digits = SSCC_PARTITIONS[partition].reference_digits
        _require_digits("extension + serial reference", self.serial_reference, digits)

    @property
    def partition(self) -> int:
        """Partition value: 12 minus the company prefix length."""
        return 12 - len(self.company_prefix)

    @property
    def sscc(self) -> str:
        """SSCC-18 with the extension digit moved to the front and its check digit."""
        body = self.serial_reference[0] + self.company_prefix + self.serial_reference[1:]
        return body + check_digit(body)

    @property
    def pure_identity_uri(self) -> str:
        """EPC pure identity URI, urn:epc:id:sscc:CompanyPrefix.SerialReference."""
        return f"urn:epc:id:sscc:{self.company_prefix}.{self.serial_reference}"

    @property
    def tag_uri(self) -> str:
        """EPC tag URI, urn:epc:tag:sscc-96:Filter.CompanyPrefix.SerialReference."""
        return (
            f"urn:epc:tag:sscc-96:{self.filter_value}.{self.company_prefix}.{self.serial_reference}"
        )

    @property
    def element_string(self) -> str:
        """GS1 element string (00)SSCC."""
        return f"(00){self.sscc}"

    @property
    def hex(self) -> str:
        """The SSCC-96 EPC as 24 upper-case hex digits (24 reserved bits zero)."""
        widths = SSCC_PARTITIONS[self.partition]
        return _pack(
            SSCC96_HEADER,
            self.filter_value,
            self.partition,
            [
                (int(self.company_prefix), widths.company_prefix_bits),
                (int(self.serial_reference), widths.reference_bits),
            ],
        )


def _field(value: int, offset: int, bits: int) -> int:
    """Bits [offset, offset + bits) of a 96-bit EPC, counted from the most significant bit."""
    return (value >> (96 - offset - bits)) & ((1 << bits) - 1)


def _decimal(what: str, number: int, digits: int) -> str:
    if number >= 10**digits:
        raise EpcError(f"{what} field {number} does not fit in {digits} decimal digits")
    return str(number).zfill(digits)


def decode_epc(hex_string: str) -> Sgtin | Sscc:
    """Decode an SGTIN-96 or SSCC-96 EPC given as hex (the tag's EPC bank, after the PC word)."""
    text = hex_string.strip()
    if not _HEX.fullmatch(text):
        raise EpcError(f"EPC must be hexadecimal, got {hex_string!r}")
    header = int(text[:2], 16)
    if header not in (SGTIN96_HEADER, SSCC96_HEADER):
        name = OTHER_EPC_HEADERS.get(header)
        if name:
            raise EpcError(f"EPC header 0x{header:02X} is {name}; only SGTIN-96 and SSCC-96 decode")
        raise EpcError(f"unknown EPC header 0x{header:02X}")
    if len(text) != EPC96_HEX_DIGITS:
        raise EpcError(f"a 96-bit EPC is {EPC96_HEX_DIGITS} hex digits, got {len(text)}")
    value = int(text, 16)
    filter_value, partition = _field(value, 8, 3), _field(value, 11, 3)
    table = SGTIN_PARTITIONS if header == SGTIN96_HEADER else SSCC_PARTITIONS
    if partition not in table:
        raise EpcError(f"partition value {partition} is not defined (0..6)")
    widths = table[partition]
    prefix = _field(value, 14, widths.company_prefix_bits)
    reference = _field(value, 14 + widths.company_prefix_bits, widths.reference_bits)
    company_prefix = _decimal("company prefix", prefix, widths.company_prefix_digits)
    if header == SSCC96_HEADER:
        serial_reference = _decimal("serial reference", reference, widths.reference_digits)
        return Sscc(filter_value, company_prefix, serial_reference)
    item_reference = _decimal("item reference", reference, widths.reference_digits)
    serial = str(_field(value, 58, SGTIN96_SERIAL_BITS))
    return Sgtin(filter_value, company_prefix, item_reference, serial)


_URI_SCHEMES: dict[str, type[Sgtin] | type[Sscc]] = {
    "urn:epc:id:sgtin:": Sgtin,
    "urn:epc:id:sscc:": Sscc,
    "urn:epc:tag:sgtin-96:": Sgtin,
    "urn:epc:tag:sscc-96:": Sscc,
}


def parse_epc_uri(uri: str, filter_value: int = 0) -> Sgtin | Sscc:
    """Parse an SGTIN/SSCC pure identity URI (with filter_value) or an sgtin-96/sscc-96 tag URI."""
    prefix = next((p for p in _URI_SCHEMES if uri.startswith(p)), None)
    if prefix is None:
        raise EpcError(f"not an SGTIN or SSCC EPC URI: {uri!r}")
    fields = uri[len(prefix) :]
    if prefix.startswith("urn:epc:tag:"):
        filter_text, _, fields = fields.partition(".")
        if not _DIGITS.fullmatch(filter_text):
            raise EpcError(f"tag URI filter value must be a digit, got {filter_text!r}")
        filter_value = int(filter_text)
    if _URI_SCHEMES[prefix] is Sscc:
        company_prefix, _, serial_reference = fields.partition(".")
        return Sscc(filter_value, company_prefix, serial_reference)
    parts = fields.split(".", 2)
    if len(parts) != 3:
        raise EpcError(f"SGTIN URI needs CompanyPrefix.ItemReference.Serial, got {fields!r}")
    company_prefix, item_reference, serial = parts
    return Sgtin(filter_value, company_prefix, item_reference, unquote(serial))


def _gtin_parts(gtin: str, company_prefix_length: int) -> tuple[str, str]:
    if not (_DIGITS.fullmatch(gtin) and len(gtin) in (8, 12, 13, 14)):
        raise EpcError(f"GTIN must be 8, 12, 13 or 14 digits, got {gtin!r}")
    gtin = gtin.zfill(14)
    if check_digit(gtin[:-1]) != gtin[-1]:
        raise EpcError(f"GTIN {gtin} has a wrong check digit (expected {check_digit(gtin[:-1])})")
    if not 6 <= company_prefix_length <= 12:
        raise EpcError(f"company prefix length must be 6..12, got {company_prefix_length}")
    return gtin[1 : 1 + company_prefix_length], gtin[0] + gtin[1 + company_prefix_length : 13]


def encode_sgtin96(
    gtin: str, serial: str | int, company_prefix_length: int, filter_value: int = 0
) -> str:
    """SGTIN-96 hex for a GTIN and serial; the company prefix length is not in the GTIN."""
    company_prefix, item_reference = _gtin_parts(gtin, company_prefix_length)
    return Sgtin(filter_value, company_prefix, item_reference, str(serial)).hex


def encode_sscc96(sscc: str, company_prefix_length: int, filter_value: int = 0) -> str:
    """SSCC-96 hex for an SSCC-18; the company prefix length is not in the SSCC."""
    if not (_DIGITS.fullmatch(sscc) and len(sscc) == 18):
        raise EpcError(f"SSCC must be 18 digits, got {sscc!r}")
    if check_digit(sscc[:-1]) != sscc[-1]:
        raise EpcError(f"SSCC {sscc} has a wrong check digit (expected {check_digit(sscc[:-1])})")
    if not 6 <= company_prefix_length <= 12:
        raise EpcError(f"company prefix length must be 6..12, got {company_prefix_length}")
    company_prefix = sscc[1 : 1 + company_prefix_length]
    serial_reference = sscc[0] + sscc[1 + company_prefix_length : 17]
    return Sscc(filter_value, company_prefix, serial_reference).hex
