"""The wire contract between gateways and the cloud: topics, envelopes and their codec.

This is the only module the cloud imports from edge/. A change here is a change of the
protocol: bump SCHEMA_VERSION and keep decoding the old one until every gateway is updated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
TOPIC_ROOT = "cc/v1"
SHARED_GROUP = "ingest"

Channel = Literal["readings", "rfid", "events", "heartbeat", "status"]
CHANNELS: tuple[Channel, ...] = ("readings", "rfid", "events", "heartbeat", "status")
# Buffer record kind -> the channel its envelopes are published on.
RECORD_CHANNELS: dict[str, Channel] = {
    "reading": "readings",
    "observation": "rfid",
    "event": "events",
}


class Quality(StrEnum):
    """How far a reading can be trusted."""

    OK = "ok"
    TIMEOUT = "timeout"
    MODBUS_EXCEPTION = "modbus_exception"
    OUT_OF_RANGE = "out_of_range"
    STALE = "stale"
    CALIBRATION_OVERDUE = "calibration_overdue"


# --- topics -------------------------------------------------------------------------------


def topic(site: str, gateway: str, channel: Channel) -> str:
    """The topic a gateway publishes `channel` on."""
    return f"{TOPIC_ROOT}/{site}/{gateway}/{channel}"


def subscription(channel: Channel, shared: bool, group: str = SHARED_GROUP) -> str:
    """The filter the cloud subscribes with; shared splits the load over ingest workers."""
    plain = f"{TOPIC_ROOT}/+/+/{channel}"
    return f"$share/{group}/{plain}" if shared else plain


class TopicError(ValueError):
    """A topic outside the cc/v1/{site}/{gateway}/{channel} scheme."""


def parse_topic(name: str) -> tuple[str, str, Channel]:
    """Split a received topic into (site, gateway, channel)."""
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT or parts[4] not in CHANNELS:
        raise TopicError(f"topic {name!r} is not {TOPIC_ROOT}/<site>/<gateway>/<channel>")
    return parts[2], parts[3], parts[4]


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> BrokerAddress:
        """'mqtt://host:port' or 'host:port'."""
        rest = text.removeprefix("mqtt://")
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"broker {text!r} is not mqtt://host:port")
        return cls(host, int(port))


# --- payloads -----------------------------------------------------------------------------

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reading(_Strict):
    """One measured value of one sensor, stamped with the time it was taken (UTC)."""

    seq: int = Field(ge=0)
    sensor: Identifier
    quantity: Identifier
    value: float | None
    unit: str = Field(max_length=16)
    quality: Quality
    taken_at: AwareDatetime


class ReadingsEnvelope(_Strict):
    """Many readings of one gateway in one MQTT message."""

    v: int
    gateway: Identifier
    site: Identifier
    sent_at: AwareDatetime
    records: list[Reading] = Field(min_length=1)


class Observation(_Strict):
    """A tag seen at a read point: raw reads debounced into one record per tag and pass."""

    seq: int = Field(ge=0)
    epc: str = Field(min_length=1, max_length=128, description="EPC as hex (or the raw tag id)")
    id_uri: str | None = Field(default=None, description="urn:epc:id:sgtin:... when decodable")
    gtin: str | None = None
    serial: str | None = None
    sscc: str | None = None
    read_point: Identifier
    antenna: int | None = None
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    count: int = Field(ge=1)
    peak_rssi: float | None = None
    direction: Literal["in", "out"] | None = None


class ObservationsEnvelope(_Strict):
    """Many RFID observations of one gateway in one MQTT message."""

    v: int
    gateway: Identifier
    site: Identifier
    sent_at: AwareDatetime
    records: list[Observation] = Field(min_length=1)


class GatewayEvent(_Strict):
    """Something the gateway decided or noticed itself, e.g. its local alarm going off."""

    seq: int = Field(ge=0)
    type: Literal["local_alarm", "local_alarm_clear", "alarm_output_failed"]
    at: AwareDatetime
    zone: Identifier | None = None
    value: float | None = None
    limit: float | None = None
    detail: str = ""


class EventsEnvelope(_Strict):
    v: int
    gateway: Identifier
    site: Identifier
    sent_at: AwareDatetime
    records: list[GatewayEvent] = Field(min_length=1)


class ZoneInfo(_Strict):
    id: Identifier
    name: str
    kind: str = "cold_room"
    low: float | None = None
    high: float | None = None


class SensorInfo(_Strict):
    id: Identifier
    zone: Identifier
    model: str
    quantities: list[str]


class ReadPointInfo(_Strict):
    """An RFID read point and what a tag seen there means: where it is, which business step."""

    id: Identifier
    zone: Identifier
    business_step: str
    reader: Identifier


class SiteInfo(_Strict):
    id: Identifier
    name: str
    kind: Literal["warehouse", "truck", "customer"]
    timezone: str = "UTC"


class StatusMessage(_Strict):
    """Retained per gateway: online with its inventory, or offline (the Last Will)."""

    v: int
    gateway: Identifier
    site: Identifier
    state: Literal["online", "offline"]
    at: AwareDatetime | None = None
    site_info: SiteInfo | None = None
    zones: list[ZoneInfo] = []
    sensors: list[SensorInfo] = []
    read_points: list[ReadPointInfo] = []


class Heartbeat(_Strict):
    """Gateway health, published periodically."""

    v: int
    gateway: Identifier
    site: Identifier
    at: AwareDatetime
    buffer_depth: int
    oldest_unsent_age_s: float | None = None
    dropped_records: int
    poll_errors: dict[str, int] = {}
    disk_free_bytes: int | None = None
    clock_synchronised: bool | None = None
    uptime_s: float | None = None
    inflight: int | None = None
    refused_envelopes: int = 0
    alarms: list[str] = Field(default=[], description="Zones whose local alarm is on")
    next_seq: int | None = Field(
        default=None,
        ge=0,
        description="The seq the buffer gives next; below one the cloud has received, the "
        "gateway's numbering restarted (an old image, a replaced buffer)",
    )


Message = ReadingsEnvelope | ObservationsEnvelope | EventsEnvelope | StatusMessage | Heartbeat
_MODELS: dict[Channel, type[Message]] = {
    "readings": ReadingsEnvelope,
    "rfid": ObservationsEnvelope,
    "events": EventsEnvelope,
    "status": StatusMessage,
    "heartbeat": Heartbeat,
}


class WireError(ValueError):
    """A message the cloud must not accept; the text is the dead-letter reason."""


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, the only time format on the wire."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(message: BaseModel) -> bytes:
    """Serialise a status or heartbeat message."""
    return message.model_dump_json(exclude_none=True).encode()


def encode_reading_body(
    sensor: str, quantity: str, value: float | None, unit: str, quality: Quality, taken_at: datetime
) -> str:
    """A reading without its sequence number, as stored in the gateway buffer.

    The buffer assigns `seq` on insert; `assemble_readings` puts the two together, so a
    backlog is published without decoding and re-encoding every record.
    """
    return json.dumps(
        {
            "sensor": sensor,
            "quantity": quantity,
            "value": value,
            "unit": unit,
            "quality": str(quality),
            "taken_at": utc_iso(taken_at),
        },
        separators=(",", ":"),
    )[1:]


def encode_body(record: BaseModel) -> str:
    """Any record model (Observation, GatewayEvent) as a buffer body: JSON without its seq."""
    return record.model_dump_json(exclude={"seq"}, exclude_none=True)[1:]


def encode_record(seq: int, body: str) -> str:
    """One element of an envelope's records: a stored body with its sequence number put back."""
    return f'{{"seq":{seq},{body}'


def envelope_head(gateway: str, site: str, sent_at: datetime | None = None) -> bytes:
    """An envelope up to its first record; `records` and then b"]}" complete it."""
    head = json.dumps(
        {
            "v": SCHEMA_VERSION,
            "gateway": gateway,
            "site": site,
            "sent_at": utc_iso(sent_at or datetime.now(UTC)),
        },
        separators=(",", ":"),
    )[:-1]
    return head.encode() + b',"records":['


def assemble_envelope(
    gateway: str, site: str, records: bytes, sent_at: datetime | None = None
) -> bytes:
    """An envelope around records already made by `encode_record` and joined with commas."""
    return b"".join((envelope_head(gateway, site, sent_at), records, b"]}"))


def assemble_readings(
    gateway: str, site: str, records: list[tuple[int, str]], sent_at: datetime | None = None
) -> bytes:
    """An envelope from (seq, body) pairs made by `encode_reading_body` or `encode_body`.

    The same shape serves every record kind; the topic says which kind it is.
    """
    body = ",".join(encode_record(seq, rest) for seq, rest in records)
    return assemble_envelope(gateway, site, body.encode(), sent_at)


def decode(topic_name: str, payload: bytes) -> tuple[Channel, Message]:
    """Validate a received message against its topic; raise WireError with the reason."""
    try:
        site, gateway, channel = parse_topic(topic_name)
    except TopicError as exc:
        raise WireError(str(exc)) from None
    try:
        message = _MODELS[channel].model_validate_json(payload)
    except ValidationError as exc:
        raise WireError(_explain(payload, exc)) from None
    if message.v not in SUPPORTED_VERSIONS:
        raise WireError(_unsupported(message.v))
    if message.gateway != gateway or message.site != site:
        raise WireError(
            f"envelope says gateway {message.gateway!r} at site {message.site!r} "
            f"but was published on {topic_name!r}"
        )
    return channel, message


def _unsupported(version: object) -> str:
    return f"unsupported schema version {version!r} (supported: {sorted(SUPPORTED_VERSIONS)})"


def _explain(payload: bytes, exc: ValidationError) -> str:
    """Why a payload failed: not JSON, an unknown version, or the fields that are wrong."""
    try:
        head = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"payload is not JSON: {error}"
    if not isinstance(head, dict):
        return f"payload is a JSON {type(head).__name__}, not an object"
    if head.get("v") not in SUPPORTED_VERSIONS:
        return _unsupported(head.get("v"))
    return _describe(exc)


def _describe(exc: ValidationError) -> str:
    """The first few validation errors as 'field.path: message' lines."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "<root>"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "invalid payload: " + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
