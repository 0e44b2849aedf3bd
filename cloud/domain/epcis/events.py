"""EPCIS 2.0 events as frozen values: what was seen, where, when, and in what conditions.

Pure, no I/O. Identifiers are kept as the URIs the caller or trading partner used (EPC
pure-identity URNs such as urn:epc:id:sgtin:..., GS1 Digital Link URIs, SGLN read points or
plain URIs). Core Business Vocabulary values are normalised to the bare names the EPCIS 2.0
JSON-LD context defines ("receiving", not urn:epcglobal:cbv:bizstep:receiving), and GS1
measurement types to their bare names ("Temperature" for gs1:Temperature), so that rules
compare one spelling and the export is valid against the GS1 JSON schema.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

ACTIONS = frozenset({"ADD", "OBSERVE", "DELETE"})
TEMPERATURE = "Temperature"
CELSIUS = "CEL"

# CBV 2.0 and GS1 Web Vocabulary terms, as enumerated by the GS1 EPCIS 2.0 JSON schema.
BIZ_STEPS = frozenset(
    """accepting arriving assembling collecting commissioning consigning creating_class_instance
    cycle_counting decommissioning departing destroying disassembling dispensing encoding
    entering_exiting holding inspecting installing killing loading other packing picking
    receiving removing repackaging repairing replacing reserving retail_selling sampling
    sensor_reporting shipping staging_outbound stock_taking stocking storing transporting
    unloading unpacking void_shipping""".split()
)
DISPOSITIONS = frozenset(
    """active available completeness_inferred completeness_verified conformant container_closed
    container_open damaged destroyed dispensed disposed encoded expired in_progress in_transit
    inactive mismatch_class mismatch_instance mismatch_quantity needs_replacement
    no_pedigree_match non_conformant non_sellable_other partially_dispensed recalled reserved
    retail_sold returned sellable_accessible sellable_not_accessible stolen unavailable
    unknown""".split()
)
MEASUREMENT_TYPES = frozenset(
    """AbsoluteHumidity AbsorbedDose AbsorbedDoseRate Acceleration Altitude AmountOfSubstance
    AmountOfSubstancePerUnitVolume Angle AngularAcceleration AngularMomentum AngularVelocity
    Area Capacitance Conductance Conductivity Count Density Dimensionless DoseEquivalent
    DoseEquivalentRate DynamicViscosity ElectricCharge ElectricCurrent ElectricCurrentDensity
    ElectricFieldStrength Energy Exposure Force Frequency Illuminance Inductance Irradiance
    KinematicViscosity Length LinearMomentum Luminance LuminousFlux LuminousIntensity
    MagneticFlux MagneticFluxDensity MagneticVectorPotential Mass MassConcentration
    MassFlowRate MassPerAreaTime MemoryCapacity MolalityOfSolute MolarEnergy MolarMass
    MolarVolume Power Pressure Radioactivity RadiantFlux RadiantIntensity RelativeHumidity
    Resistance Resistivity SolidAngle SpecificVolume Speed SurfaceDensity SurfaceTension
    Temperature Time Torque Voltage Volume VolumeFlowRate VolumeFraction VolumetricFlux
    Wavenumber""".split()
)

# (JSON field, the bare terms, the URI spellings of the same terms)
VOCABULARIES = {
    "bizStep": (
        BIZ_STEPS,
        ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-", "cbv:BizStep-"),
    ),
    "disposition": (
        DISPOSITIONS,
        ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-", "cbv:Disp-"),
    ),
    "type": (
        MEASUREMENT_TYPES,
        ("gs1:", "https://gs1.org/voc/", "http://gs1.org/voc/", "https://www.gs1.org/voc/"),
    ),
}
# URI namespaces whose terms the JSON schema only accepts in their bare form
RESERVED_NAMESPACES = (
    "urn:epcglobal:cbv:",
    "cbv:",
    "https://ref.gs1.org/cbv/",
    "http://ns.gs1.org/cbv/",
    "https://ns.gs1.org/cbv/",
    "http://gs1.org/voc/",
    "https://gs1.org/voc/",
    "http://www.gs1.org/voc/",
    "https://www.gs1.org/voc/",
)

URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
TIME_ZONE_OFFSET = re.compile(r"([+-])((0[0-9]|1[0-3]):([0-5][0-9])|14:00)")
UOM = re.compile(r"[A-Z0-9]{2,3}")


class EpcisError(ValueError):
    """An EPCIS document or event that cannot be read or built; names the event and field."""

    def __init__(self, message: str, field: str | None = None, *, index: int | None = None):
        self.message, self.field, self.index = message, field, index
        where = ": ".join(
            part
            for part in (None if index is None else f"event {index}", field)
            if part is not None
        )
        super().__init__(f"{where}: {message}" if where else message)

    def within(self, prefix: str, index: int | None = None) -> EpcisError:
        """The same error, located inside `prefix` (a JSON path) and event `index`."""
        inner = f"{prefix}.{self.field}" if prefix and self.field else prefix or self.field
        return EpcisError(self.message, field=inner, index=self.index if index is None else index)


def _term(value: str, json_field: str) -> str:
    """The bare CBV / GS1 term for `value` in any of its spellings; other URIs unchanged."""
    terms, prefixes = VOCABULARIES[json_field]
    if not isinstance(value, str):
        raise EpcisError(f"not a string: {value!r}", field=json_field)
    if value in terms:
        return value
    for prefix in prefixes:
        if value.startswith(prefix) and value[len(prefix) :] in terms:
            return value[len(prefix) :]
    if value.startswith(RESERVED_NAMESPACES) or not URI.fullmatch(value):
        raise EpcisError(f"neither a CBV / GS1 term nor a URI: {value!r}", field=json_field)
    return value


def offset_zone(offset: str) -> timezone:
    """The fixed-offset zone for an eventTimeZoneOffset such as '+01:00'."""
    sign = -1 if offset.startswith("-") else 1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))


def _uri(value: object, json_field: str) -> None:
    if not isinstance(value, str) or not URI.fullmatch(value):
        raise EpcisError(f"not a URI: {value!r}", field=json_field)


def _aware(value: object, json_field: str) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise EpcisError(f"not a time-zone-aware datetime: {value!r}", field=json_field)


def _epcs(values: tuple[str, ...], json_field: str) -> None:
    for position, epc in enumerate(values):
        _uri(epc, f"{json_field}[{position}]")
    twice = sorted(epc for epc, times in Counter(values).items() if times > 1)
    if twice:
        raise EpcisError(f"listed more than once: {', '.join(twice)}", field=json_field)


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # frozen: normalise once, while constructing


@dataclass(frozen=True, kw_only=True)
class SensorReport:
    """One measurement: a value at a time, or min/max/mean over the element's interval."""

    type: str
    value: float | None = None
    min_value: float | None = None
    max_value: float | None = None
    mean_value: float | None = None
    uom: str | None = None
    time: datetime | None = None
    device_id: str | None = None

    def __post_init__(self) -> None:
        _set(self, "type", _term(self.type, "type"))
        for name, json_field in REPORT_NUMBERS:
            number = getattr(self, name)
            if number is None:
                continue
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise EpcisError(f"not a number: {number!r}", field=json_field)
            if not math.isfinite(number):
                raise EpcisError(f"not a finite number: {number!r}", field=json_field)
            _set(self, name, float(number))
        low, high = self.min_value, self.max_value
        if low is not None and high is not None and low > high:
            raise EpcisError(f"{low} is above maxValue {high}", field="minValue")
        if self.uom is not None and not (isinstance(self.uom, str) and UOM.fullmatch(self.uom)):
            raise EpcisError(f"not a UN/CEFACT unit code: {self.uom!r}", field="uom")
        if self.time is not None:
            _aware(self.time, "time")
        if self.device_id is not None:
            _uri(self.device_id, "deviceID")


REPORT_NUMBERS = (
    ("value", "value"),
    ("min_value", "minValue"),
    ("max_value", "maxValue"),
    ("mean_value", "meanValue"),
)


@dataclass(frozen=True, kw_only=True)
class SensorElement:
    """Reports from one device, taken at `time` or over start_time..end_time."""

    reports: tuple[SensorReport, ...]
    time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    device_id: str | None = None

    def __post_init__(self) -> None:
        _set(self, "reports", tuple(self.reports))
        if not self.reports:
            raise EpcisError("needs at least one sensor report", field="sensorReport")
        for name, json_field in (("time", "time"), ("start_time", "startTime")):
            if getattr(self, name) is not None:
                _aware(getattr(self, name), f"sensorMetadata.{json_field}")
        if self.end_time is not None:
            _aware(self.end_time, "sensorMetadata.endTime")
            if self.start_time is not None and self.start_time > self.end_time:
                raise EpcisError("startTime is after endTime", field="sensorMetadata.startTime")
        if self.device_id is not None:
            _uri(self.device_id, "sensorMetadata.deviceID")


@dataclass(frozen=True, kw_only=True)
class _Event:
    """What both event kinds share; `raw` is a partner's event as received (imports only)."""

    event_time: datetime
    event_time_zone_offset: str
    action: str
    biz_step: str | None = None
    disposition: str | None = None
    read_point: str | None = None
    biz_location: str | None = None
    sensor_elements: tuple[SensorElement, ...] = ()
    event_id: str | None = None
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _aware(self.event_time, "eventTime")
        offset = self.event_time_zone_offset
        if not (isinstance(offset, str) and TIME_ZONE_OFFSET.fullmatch(offset)):
            raise EpcisError(f"not an offset like +01:00: {offset!r}", "eventTimeZoneOffset")
        if self.action not in ACTIONS:
            raise EpcisError(f"not one of {sorted(ACTIONS)}: {self.action!r}", field="action")
        for name, json_field in (("biz_step", "bizStep"), ("disposition", "disposition")):
            if getattr(self, name) is not None:
                _set(self, name, _term(getattr(self, name), json_field))
        for name, json_field in LOCATIONS + (("event_id", "eventID"),):
            if getattr(self, name) is not None:
                _uri(getattr(self, name), json_field)
        _set(self, "sensor_elements", tuple(self.sensor_elements))


LOCATIONS = (("read_point", "readPoint.id"), ("biz_location", "bizLocation.id"))


@dataclass(frozen=True, kw_only=True)
class ObjectEvent(_Event):
    """Objects observed, commissioned (ADD) or decommissioned (DELETE) at a read point."""

    epc_list: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        _set(self, "epc_list", tuple(self.epc_list))
        _epcs(self.epc_list, "epcList")


@dataclass(frozen=True, kw_only=True)
class AggregationEvent(_Event):
    """Children packed onto (ADD) or taken off (DELETE) a parent such as an SSCC pallet.

    Partners also send OBSERVE (the aggregation was seen intact), so it is accepted too.
    """

    parent_id: str | None = None
    child_epcs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.parent_id is not None:
            _uri(self.parent_id, "parentID")
        _set(self, "child_epcs", tuple(self.child_epcs))
        _epcs(self.child_epcs, "childEPCs")


@dataclass(frozen=True, kw_only=True)
class OtherEvent:
    """An event of a type not mapped here (TransactionEvent, ...), kept as received."""

    type: str
    raw: Mapping[str, Any] = field(hash=False)


Event = ObjectEvent | AggregationEvent | OtherEvent
