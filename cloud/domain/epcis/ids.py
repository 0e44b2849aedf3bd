"""Identifiers as EPCIS writes them: items, logistic units, read points, zones, sensors.

Pure. Items and units are written as EPC pure-identity URNs when their tag's EPC decodes
(SGTIN-96, SSCC-96), else as GS1 Digital Link URIs; our own read points, zones and sensors
are URNs under urn:coldchain:, which an import maps back. Reading accepts EPC URNs (pure
identity and tag), GS1 Digital Link URIs, and bare read point or zone ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from edge.gs1 import (
    ElementStringError,
    EpcError,
    Sgtin,
    Sscc,
    decode_epc,
    parse_dl_uri,
    parse_epc_uri,
)

DIGITAL_LINK = "https://id.gs1.org"
READ_POINT = "urn:coldchain:readpoint:"
ZONE = "urn:coldchain:zone:"
SENSOR = "urn:coldchain:sensor:"


@dataclass(frozen=True)
class Subject:
    """What an EPC names: an item (gtin, serial) or a logistic unit (sscc)."""

    gtin: str | None = None
    serial: str | None = None
    sscc: str | None = None


def item_uri(gtin: str, serial: str, epc_hex: str | None) -> str:
    decoded = _decoded(epc_hex)
    if isinstance(decoded, Sgtin) and decoded.gtin == gtin and decoded.serial == serial:
        return decoded.pure_identity_uri
    return f"{DIGITAL_LINK}/01/{gtin}/21/{quote(serial, safe='')}"


def unit_uri(sscc: str, epc_hex: str | None) -> str:
    decoded = _decoded(epc_hex)
    if isinstance(decoded, Sscc) and decoded.sscc == sscc:
        return decoded.pure_identity_uri
    return f"{DIGITAL_LINK}/00/{sscc}"


def read_point_uri(read_point_id: str) -> str:
    return READ_POINT + quote(read_point_id, safe="")


def zone_uri(zone_id: str) -> str:
    return ZONE + quote(zone_id, safe="")


def sensor_uri(sensor_id: str) -> str:
    return SENSOR + quote(sensor_id, safe="")


def local_id(uri: str, prefix: str) -> str:
    """Our id behind one of our URNs, or the string itself (a partner may send bare ids)."""
    return unquote(uri[len(prefix) :]) if uri.startswith(prefix) else uri


def subject_of(uri: str) -> Subject | None:
    """The item or unit an EPC URI names; None for anything else (classes, other keys)."""
    try:
        if uri.startswith(("urn:epc:id:", "urn:epc:tag:")):
            epc = parse_epc_uri(uri)
            if isinstance(epc, Sgtin):
                return Subject(gtin=epc.gtin, serial=epc.serial)
            return Subject(sscc=epc.sscc)
        if uri.startswith(("http://", "https://")):
            parsed = parse_dl_uri(uri)
            if parsed.sscc is not None:
                return Subject(sscc=parsed.sscc)
            if parsed.gtin is not None and parsed.serial is not None:
                return Subject(gtin=parsed.gtin, serial=parsed.serial)
    except (EpcError, ElementStringError):
        return None
    return None


def _decoded(epc_hex: str | None) -> Sgtin | Sscc | None:
    if not epc_hex:
        return None
    try:
        return decode_epc(epc_hex)
    except EpcError:
        return None
