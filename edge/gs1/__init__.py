"""GS1 identifiers read by the gateway: RFID EPCs and barcode element strings (UDI).

Pure functions, no I/O. The work is split by carrier; this module is the one to import:
  edge.gs1.epc         SGTIN-96 / SSCC-96 EPCs <-> GTIN, SSCC, EPC URIs, element strings
  edge.gs1.scan        barcode scans, bracketed / raw element strings, GS1 Digital Link URIs
  edge.gs1.dictionary  the GS1 Barcode Syntax Dictionary (AI formats) as a table
  edge.gs1.lint        the GS1 syntax linters (check digits, dates, code lists)
"""

from __future__ import annotations

from edge.gs1.dictionary import AI_TABLE, AIEntry
from edge.gs1.epc import (
    EpcError,
    Sgtin,
    Sscc,
    decode_epc,
    encode_sgtin96,
    encode_sscc96,
    parse_epc_uri,
)
from edge.gs1.lint import check_digit, lint
from edge.gs1.scan import (
    GS,
    AIElement,
    ElementString,
    ElementStringError,
    Symbology,
    parse_ai_data,
    parse_bracketed,
    parse_dl_uri,
    parse_element_string,
    parse_scan,
)

__all__ = [
    "AI_TABLE",
    "GS",
    "AIElement",
    "AIEntry",
    "ElementString",
    "ElementStringError",
    "EpcError",
    "Sgtin",
    "Sscc",
    "Symbology",
    "check_digit",
    "decode_epc",
    "encode_sgtin96",
    "encode_sscc96",
    "lint",
    "parse_ai_data",
    "parse_bracketed",
    "parse_dl_uri",
    "parse_element_string",
    "parse_epc_uri",
    "parse_scan",
]
