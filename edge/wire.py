"""The wire contract between gateways and the cloud: topics, envelopes and their codec.

This is the only module the cloud imports from edge/. A change here is a change of the
protocol: bump SCHEMA_VERSION and keep decoding the old one until every gateway is updated.
"""

from __future__ import annotations

import json
import math
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

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
    # The probe answered with a value its register map marks as "no measurement" (a
    # disconnected or failed probe: 0x7FFF, 0x8000, a float32 NaN): no value is sent.
    SENSOR_FAULT = "sensor_fault"
    # A value that is not a finite number (NaN, Infinity) reached the wire: dropped, flagged.
    INVALID_VALUE = "invalid_value"
    # Taken while the gateway's clock was not synchronised (its heartbeat said so): the
    # time the reading carries cannot be trusted. Set by the cloud, never by a gateway.
    CLOCK_UNSYNCHRONISED = "clock_unsynchronised"


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


BROKER_SCHEMES = {"mqtt": (False, 1883), "mqtts": (True, 8883)}  # scheme: TLS, default port


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker listens, and whether the connection is TLS (mqtts)."""

    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> BrokerAddress:
        """'mqtts://host[:port]' (TLS, 8883), 'mqtt://host[:port]' (1883) or 'host:port'."""
        shape = "is not mqtt://host:port or mqtts://host:port"
        if "://" not in text:  # the bare form: plain MQTT, the port written out
            host, _, digits = text.rpartition(":")
            if "@" in host or not host or not digits.isdigit() or not 0 < int(digits) < 65536:
                raise ValueError(f"broker {text!r} {shape}")
            return cls(host.strip("[]"), int(digits))
        parts = urlsplit(text)
        if "@" in parts.netloc:  # never echoed: it may hold a password
            raise ValueError(
                f"broker {parts.scheme}://...@{parts.hostname}: no credentials in the address "
                "(a user name and a password file, or its environment variable, instead)"
            )
        if parts.scheme not in BROKER_SCHEMES:
            raise ValueError(
                f"broker {text!r}: scheme {parts.scheme!r} is not supported (mqtt or mqtts)"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"broker {text!r} {shape}")
        tls, default_port = BROKER_SCHEMES[parts.scheme]
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"broker {text!r}: the port is not a number 1-65535") from None
        if not parts.hostname or port == 0:
            raise ValueError(f"broker {text!r} {shape}")
        return cls(parts.hostname, port or default_port, tls)


def client_tls(
    ca_file: str | None = None, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext:
    """The TLS a client speaks to the broker: 1.2 at least, the broker's certificate and host
    name verified against `ca_file` (else the system's CAs), a client certificate if given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context


# --- payloads -----------------------------------------------------------------------------

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
# Free text: no NUL (PostgreSQL cannot store it) and no other control character but tab.
Text = Annotated[str, Field(pattern=r"^[^\x00-\x08\x0a-\x1f]*$")]
# A sequence number or count: a PostgreSQL bigint.
Seq = Annotated[int, Field(ge=0, le=2**63 - 1)]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: object) -> object:
    """Only RFC 3339 date-times with an offset: no epoch numbers, no dates alone."""
    if isinstance(value, datetime):  # built in Python (the gateway), not parsed
        return value
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError(f"not an RFC 3339 date-time with a timezone offset: {value!r}"[:200])
    return value


# A time on the wire: an RFC 3339 string with its offset (pydantic alone would also take a
# string of epoch seconds, or a time with a space for its T).
WireTime = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_rfc3339)]


class _Strict(BaseModel):
    # strict: a number is a JSON number (never true or "7.5"), a time an RFC 3339 string
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Reading(_Strict):
    """One measured value of one sensor, stamped with the time it was taken (UTC)."""

    seq: Seq
    sensor: Identifier
    quantity: Identifier
    value: float | None
    unit: Text = Field(max_length=16)
    quality: Quality
    taken_at: WireTime

    @model_validator(mode="after")
    def _finite(self) -> Reading:
        """NaN and the infinities are no temperature: the reading keeps no value, flagged."""
        if self.value is not None and not math.isfinite(self.value):
            self.__dict__["value"] = None  # frozen to callers; this is its construction
            self.__dict__["quality"] = Quality.INVALID_VALUE
        return self


class ReadingsEnvelope(_Strict):
    """Many readings of one gateway in one MQTT message."""

    v: int
    gateway: Identifier
    site: Identifier
    sent_at: WireTime
    records: list[Reading] = Field(min_length=1)


class Observation(_Strict):
    """A tag seen at a read point: raw reads debounced into one record per tag and pass."""

    seq: Seq
    epc: Text = Field(min_length=1, max_length=128, description="EPC as hex (or the raw tag id)")
    id_uri: Text | None = Field(default=None, description="urn:epc:id:sgtin:... when decodable")
    gtin: Text | None = None
    serial: Text | None = None
    sscc: Text | None = None
    read_point: Identifier
    antenna: int | None = None
    first_seen: WireTime
    last_seen: WireTime
    count: int = Field(ge=1)
    peak_rssi: float | None = None
    direction: Literal["in", "out"] | None = None


class ObservationsEnvelope(_Strict):
    """Many RFID observations of one gateway in one MQTT message."""

    v: int
    gateway: Identifier
    site: Identifier
    sent_at: WireTime
    records: list[Observation] = Field(min_length=1)


class GatewayEvent(_Strict):
    """Something the gateway decided or noticed itself, e.g. its local alarm going off."""

    seq: Seq
    type: Literal["local_alarm", "local_alarm_clear", "alarm_output_failed"]
    at: WireTime
    zone: Identifier | None = None
    value: float | None = None
    limit: float | None = None
    detail: Text = ""


class EventsEnvelope(_Strict):
    v: int
    gateway: Identifier
    site: Identifier
    sent_at: WireTime
    records: list[GatewayEvent] = Field(min_length=1)


class ZoneInfo(_Strict):
    id: Identifier
    name: Text
    kind: Text = "cold_room"
    low: float | None = None
    high: float | None = None


class SensorInfo(_Strict):
    id: Identifier
    zone: Identifier
    model: Text
    quantities: list[Text]


class ReadPointInfo(_Strict):
    """An RFID read point and what a tag seen there means: where it is, which business step."""

    id: Identifier
    zone: Identifier
    business_step: Text
    reader: Identifier


class SiteInfo(_Strict):
    id: Identifier
    name: Text
    kind: Literal["warehouse", "truck", "customer"]
    timezone: Text = "UTC"


class StatusMessage(_Strict):
    """Retained per gateway: online with its inventory, or offline (the Last Will)."""

    v: int
    gateway: Identifier
    site: Identifier
    state: Literal["online", "offline"]
    at: WireTime | None = None
    site_info: SiteInfo | None = None
    zones: list[ZoneInfo] = []
    sensors: list[SensorInfo] = []
    read_points: list[ReadPointInfo] = []


class Heartbeat(_Strict):
    """Gateway health, published periodically."""

    v: int
    gateway: Identifier
    site: Identifier
    at: WireTime
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
    backlog is published without decoding and re-encoding every record. A value that is not
    a finite number goes out as none, flagged invalid_value (JSON has no NaN).
    """
    if value is not None and not math.isfinite(value):
        value, quality = None, Quality.INVALID_VALUE
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
