"""GS1 EPCIS 2.0 for the traceability core: the events, their JSON-LD export and import.

Pure: no database, no network, no file. The work is split by direction; this module is the
one to import:
  events  ObjectEvent, AggregationEvent, OtherEvent, sensor reports, vocabularies
  writer  document(): events -> EPCISDocument (JSON-LD, EPCIS 2.0)
  reader  parse_document(): EPCISDocument / EPCISQueryDocument -> events
cloud.adapters.epcis_schema checks a document against the official GS1 EPCIS 2.0 JSON schema.
"""

from __future__ import annotations

from cloud.domain.epcis.events import (
    ACTIONS,
    BIZ_STEPS,
    CELSIUS,
    DISPOSITIONS,
    MEASUREMENT_TYPES,
    TEMPERATURE,
    AggregationEvent,
    EpcisError,
    Event,
    ObjectEvent,
    OtherEvent,
    SensorElement,
    SensorReport,
)
from cloud.domain.epcis.reader import parse_document
from cloud.domain.epcis.writer import EPCIS_CONTEXT, SCHEMA_VERSION, document, event_json

__all__ = [
    "ACTIONS",
    "BIZ_STEPS",
    "CELSIUS",
    "DISPOSITIONS",
    "EPCIS_CONTEXT",
    "MEASUREMENT_TYPES",
    "SCHEMA_VERSION",
    "TEMPERATURE",
    "AggregationEvent",
    "EpcisError",
    "Event",
    "ObjectEvent",
    "OtherEvent",
    "SensorElement",
    "SensorReport",
    "document",
    "event_json",
    "parse_document",
]
