"""Gateway configuration: YAML validated once, at load, into frozen typed objects.

Errors name the file, the line, the field and the bad value, so that an engineer on a ladder
with a laptop can fix a config without reading code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge.registers import RegisterMap
from edge.wire import Identifier, ReadPointInfo, SensorInfo, SiteInfo, ZoneInfo

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A configuration file that cannot be used; str() says where and why."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {problem}" for problem in problems))


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Frozen):
    """TLS to the broker (1.2 at least); paths are relative to the config file.

    `ca_file`: the CA the broker's certificate is verified against (default: the system's).
    `cert_file` and `key_file`: the gateway's own client certificate (CN = the gateway id).
    `tls: {}` is TLS with the system's CAs and no client certificate."""

    ca_file: str | None = Field(default=None, min_length=1)
    cert_file: str | None = Field(default=None, min_length=1)
    key_file: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (the client certificate)")
        return self


_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class MqttSettings(_Frozen):
    """The broker and how to reach it. A password (from `password_file`, relative to this
    file, or the environment variable `password_env`; never in the config) needs `tls`."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    # Envelopes published but not yet acknowledged; the buffer, not paho, is the queue.
    inflight_window: int = Field(default=16, ge=1, le=1000)
    records_per_message: int = Field(default=250, ge=1, le=5000)
    ack_timeout_s: float = Field(default=30.0, gt=0)
    heartbeat_s: float = Field(default=30.0, gt=0)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=120.0, gt=0)
    tls: TlsSettings | None = None
    username: str | None = Field(default=None, min_length=1, max_length=256)
    password_file: str | None = Field(default=None, min_length=1)
    password_env: str | None = Field(default=None, pattern=_ENV_NAME)

    @model_validator(mode="before")
    @classmethod
    def _no_password_here(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            raise ValueError(
                "password: never in the config file; give password_file or password_env"
            )
        return data

    @model_validator(mode="after")
    def _login(self) -> MqttSettings:
        given = [f for f in ("password_file", "password_env") if getattr(self, f) is not None]
        if len(given) > 1:
            raise ValueError("password_file and password_env: give one of them, not both")
        if given and self.username is None:
            raise ValueError(f"{given[0]}: a password needs a username")
        if given and self.tls is None:
            raise ValueError(
                f"{given[0]}: a password is sent only over TLS; add tls (and port 8883)"
            )
        return self

    @property
    def has_password(self) -> bool:
        return self.password_file is not None or self.password_env is not None


class BufferSettings(_Frozen):
    """The size cap is set in days of data at this gateway's own polling rate."""

    file: str = "buffer.sqlite"
    # Past the cap the oldest records are dropped, counted and reported in every heartbeat.
    max_days: float = Field(default=30.0, gt=0)
    # RFID observations and events on top of the readings, as a share of them.
    headroom: float = Field(default=0.5, ge=0)


class TcpTransport(_Frozen):
    """Modbus TCP: a networked sensor, or a Modbus TCP gateway fronting an RS-485 bus."""

    kind: Literal["tcp"] = "tcp"
    host: str
    port: int = Field(default=502, ge=1, le=65535)

    @property
    def bus(self) -> str:
        """The endpoint its devices share: one client, one request at a time."""
        return f"tcp://{self.host}:{self.port}"

    def settings(self) -> str:
        """The endpoint as an engineer reads it (a serial bus adds its line settings)."""
        return self.bus


class RtuTransport(_Frozen):
    """Modbus RTU on a serial line (RS-485): every device on one port is on one bus."""

    kind: Literal["rtu"]
    port: str = Field(min_length=1, description="Serial device path, e.g. /dev/ttyUSB0.")
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[8] = 8  # Modbus RTU is always 8 data bits

    @property
    def bus(self) -> str:
        """The endpoint its devices share: one client, one request at a time."""
        return f"rtu://{self.port}"

    def settings(self) -> str:
        """The port and its line settings as an engineer writes them: 9600 8N1."""
        return f"{self.bus} ({self.baudrate} {self.bytesize}{self.parity}{self.stopbits})"


Transport = Annotated[TcpTransport | RtuTransport, Field(discriminator="kind")]
_TRANSPORTS: dict[str, type[TcpTransport | RtuTransport]] = {
    "tcp": TcpTransport,
    "rtu": RtuTransport,
}


class Calibration(_Frozen):
    """A sensor's calibration certificate: corrections to apply, and when it is due again."""

    offsets: dict[Annotated[str, Field(pattern=r"^[a-z_]+$")], float] = Field(
        default_factory=dict, description="Added to the engineering value, per quantity."
    )
    due: date = Field(description="Readings taken after this date (UTC) are flagged.")


class Zone(_Frozen):
    id: Identifier
    name: str
    kind: Literal["cold_room", "freezer", "ambient", "truck_compartment"] = "cold_room"
    low: float | None = Field(default=None, description="Lower temperature limit, C")
    high: float | None = Field(default=None, description="Upper temperature limit, C")
    # The local alarm: out of range continuously this long before the output sounds.
    alarm_delay_s: float = Field(default=900.0, ge=0)
    deadband: float = Field(default=0.5, ge=0, description="Back inside by this much to clear")
    alarm_output: Identifier | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Zone:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class Device(_Frozen):
    """A Modbus sensor: where it is, how to reach it, which register map it speaks."""

    id: Identifier
    zone: Identifier
    register_map: str = Field(description="Path to a register map, relative to this file.")
    transport: Transport
    unit_id: int = Field(default=1, ge=0, le=247)
    timeout_s: float = Field(default=1.0, gt=0, le=30)
    # Further attempts of a request that got no answer, before the poll counts as failed.
    retries: int = Field(default=1, ge=0, le=5)
    # A device that stops answering is retried after 1, 2, 4 ... seconds, at most this long.
    backoff_max_s: float = Field(default=60.0, ge=1, le=3600)
    # Raw registers unchanged for longer than this flag the readings stale (a frozen probe).
    stale_after_s: float | None = Field(default=None, gt=0)
    calibration: Calibration | None = None

    @field_validator("transport", mode="before")
    @classmethod
    def _transport_kind(cls, value: Any) -> Any:
        # Validating the chosen kind here keeps error paths free of the union's tag
        # ("transport.port", not "transport.tcp.port"); a missing kind means tcp.
        if isinstance(value, dict):
            chosen = _TRANSPORTS.get(value.get("kind", "tcp"))
            if chosen is not None:
                return chosen.model_validate(value)
        return value


def bus_problems(devices: Sequence[Device]) -> list[str]:
    """Devices on one bus must agree on its line settings and each have a unit id of its own."""
    problems: list[str] = []
    first: dict[str, Device] = {}
    units: dict[tuple[str, int], str] = {}
    for device in devices:
        bus = device.transport.bus
        other = first.setdefault(bus, device)
        if device.transport != other.transport:
            problems.append(
                f"devices {other.id} and {device.id} share {bus} with different settings: "
                f"{other.transport.settings()} vs {device.transport.settings()}"
            )
        taken_by = units.setdefault((bus, device.unit_id), device.id)
        if taken_by != device.id:
            problems.append(
                f"devices {taken_by} and {device.id} both use unit id {device.unit_id} on {bus}"
            )
    return problems


class AlarmOutput(_Frozen):
    """A relay (siren, beacon) driven through a Modbus coil when a zone alarms."""

    id: Identifier
    transport: Transport
    unit_id: int = Field(default=1, ge=0, le=247)
    coil: int = Field(ge=0, le=0xFFFF)
    timeout_s: float = Field(default=1.0, gt=0, le=30)


BusinessStep = Literal["receiving", "storing", "picking", "loading", "shipping", "unloading"]


class ReadPoint(_Frozen):
    """An RFID antenna position (dock door, cold-room door) in a zone, for a business step."""

    id: Identifier
    zone: Identifier
    business_step: BusinessStep
    # A two-antenna portal: a tag first seen on the outer antenna, then the inner one, went in.
    outer_antenna: int | None = None
    inner_antenna: int | None = None
    antennas: tuple[int, ...] = Field(
        default=(), description="Antenna ports of this point; empty: the portal's, or every port"
    )

    @model_validator(mode="after")
    def _portal(self) -> ReadPoint:
        if (self.outer_antenna is None) != (self.inner_antenna is None):
            raise ValueError("outer_antenna and inner_antenna go together (a two-antenna portal)")
        if self.outer_antenna is not None and self.outer_antenna == self.inner_antenna:
            raise ValueError(f"outer_antenna and inner_antenna are both {self.outer_antenna}")
        portal = [a for a in (self.outer_antenna, self.inner_antenna) if a is not None]
        stray = [a for a in portal if self.antennas and a not in self.antennas]
        if stray:
            raise ValueError(f"portal antennas {stray} are not in antennas {list(self.antennas)}")
        return self

    @property
    def ports(self) -> frozenset[int]:
        """The antenna ports that belong here; empty means every port of the reader."""
        portal = {a for a in (self.outer_antenna, self.inner_antenna) if a is not None}
        return frozenset(self.antennas) | portal


class HttpReaderTransport(_Frozen):
    """The reader POSTs JSON tag reads to the gateway (Zebra FX, Impinj R700 style).

    The receiver listens on `host` only (loopback unless the config names the address of the
    readers' network) and takes a POST only with the token: `Authorization: Bearer <token>`,
    or HTTP Basic with the token as the password (what fixed readers' webhooks can send).
    The token comes from a file (`token_file`, relative to the gateway config) or from an
    environment variable (`token_env`), never from the config itself."""

    kind: Literal["http"]
    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535, description="0: any free port (tests)")
    path: str = Field(default="/", pattern=r"^/")
    token_file: str | None = Field(default=None, min_length=1)
    token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _one_token(self) -> HttpReaderTransport:
        if (self.token_file is None) == (self.token_env is None):
            raise ValueError(
                "an HTTP reader needs a token: give token_file or token_env (one of them)"
            )
        return self


class MqttReaderTransport(_Frozen):
    """The reader publishes JSON tag reads on a topic of a local broker."""

    kind: Literal["mqtt"]
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    topic: str = Field(min_length=1)
    qos: Literal[0, 1] = 0
    client_id: str | None = None


class SerialReaderTransport(_Frozen):
    """One tag read per line on a serial port (USB or RS-232 reader modules)."""

    kind: Literal["serial"]
    device: str = Field(min_length=1, description="/dev/ttyUSB0, or a pyserial URL")
    baudrate: int = Field(default=115200, gt=0)
    reconnect_s: float = Field(default=5.0, gt=0)


class SimulatedReaderTransport(_Frozen):
    """Tags passing the reader's first read point at a fixed cadence (demo and tests)."""

    kind: Literal["simulated"]
    epcs: tuple[Annotated[str, Field(pattern=r"^(?:[0-9A-F]{2}){2,64}$")], ...] = Field(
        min_length=1, description="EPCs as upper-case hex"
    )
    every_s: float = Field(default=30.0, gt=0)
    pass_s: float = Field(default=3.0, gt=0)
    reads_per_s: float = Field(default=20.0, gt=0, le=1000)


ReaderTransport = Annotated[
    HttpReaderTransport | MqttReaderTransport | SerialReaderTransport | SimulatedReaderTransport,
    Field(discriminator="kind"),
]


class Reader(_Frozen):
    """An RFID reader: how its reads arrive, what it speaks, which read points it serves."""

    id: Identifier
    transport: ReaderTransport
    profile: str | None = Field(default=None, description="Reader profile, relative to this file")
    read_points: tuple[ReadPoint, ...] = Field(min_length=1)
    # A pass ends when its tag was not read for window_s; a parked tag is reported every
    # max_pass_s all the same.
    window_s: float = Field(default=2.0, gt=0, le=3600)
    max_pass_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _antennas(self) -> Reader:
        if self.profile is None and self.transport.kind != "simulated":
            raise ValueError(f"profile: a {self.transport.kind} reader needs a reader profile")
        if self.max_pass_s < self.window_s:
            raise ValueError(f"max_pass_s ({self.max_pass_s}) is below window_s ({self.window_s})")
        claimed: dict[int, str] = {}
        for i, point in enumerate(self.read_points):
            if not point.ports and len(self.read_points) > 1:
                raise ValueError(f"read_points.{i}: with several read points, name the antennas")
            for port in sorted(point.ports):
                if port in claimed:
                    raise ValueError(
                        f"read_points.{i}: antenna {port} already belongs to {claimed[port]!r}"
                    )
                claimed[port] = point.id
        return self


def _check_readers(readers: tuple[Reader, ...], info: ValidationInfo) -> tuple[Reader, ...]:
    """Read points name known zones; reader and read point ids are unique."""
    if "zones" in info.data:
        zones = {z.id for z in info.data["zones"]}
        for i, reader in enumerate(readers):
            for j, point in enumerate(reader.read_points):
                if point.zone not in zones:
                    raise ValueError(
                        f"readers.{i}.read_points.{j}.zone: {point.zone!r} is not one of the "
                        f"zones {sorted(zones)}"
                    )
    for label, ids in (
        ("reader", [r.id for r in readers]),
        ("read point", [p.id for r in readers for p in r.read_points]),
    ):
        dupes = sorted({x for x in ids if ids.count(x) > 1})
        if dupes:
            raise ValueError(f"{label} ids must be unique; repeated: {dupes}")
    return readers


Readers = Annotated[tuple[Reader, ...], AfterValidator(_check_readers)]


class Site(_Frozen):
    id: Identifier
    name: str
    kind: Literal["warehouse", "truck"]
    timezone: str = "UTC"


class GatewayConfig(_Frozen):
    """One gateway: its site, zones, sensors and how it talks to the broker."""

    id: Identifier
    site: Site
    poll_interval_s: float = Field(default=5.0, gt=0)
    mqtt: MqttSettings = MqttSettings()
    buffer: BufferSettings = BufferSettings()
    zones: tuple[Zone, ...] = Field(min_length=1)
    devices: tuple[Device, ...] = Field(min_length=1)
    readers: Readers = ()
    alarm_outputs: tuple[AlarmOutput, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        zones = {z.id for z in self.zones}
        outputs = {o.id for o in self.alarm_outputs}
        for i, zone in enumerate(self.zones):
            if zone.alarm_output is not None and zone.alarm_output not in outputs:
                raise ValueError(
                    f"zones.{i}.alarm_output: {zone.alarm_output!r} is not one of the "
                    f"alarm_outputs {sorted(outputs)}"
                )
        for i, device in enumerate(self.devices):
            if device.zone not in zones:
                raise ValueError(
                    f"devices.{i}.zone: {device.zone!r} is not one of the zones {sorted(zones)}"
                )
        for label, ids in (
            ("zone", [z.id for z in self.zones]),
            ("device", [d.id for d in self.devices]),
        ):
            dupes = sorted({x for x in ids if ids.count(x) > 1})
            if dupes:
                raise ValueError(f"{label} ids must be unique; repeated: {dupes}")
        problems = bus_problems(self.devices)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class LoadedGateway(BaseModel):
    """A validated gateway config with every register map it names, loaded."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    config: GatewayConfig
    maps: dict[str, RegisterMap]  # device id -> register map

    def site_info(self) -> SiteInfo:
        site = self.config.site
        return SiteInfo(id=site.id, name=site.name, kind=site.kind, timezone=site.timezone)

    def zone_infos(self) -> list[ZoneInfo]:
        return [
            ZoneInfo(id=z.id, name=z.name, kind=z.kind, low=z.low, high=z.high)
            for z in self.config.zones
        ]

    def readings_per_day(self) -> float:
        """Readings this gateway takes a day: every point of every device, every cycle."""
        points = sum(len(self.maps[d.id].points) for d in self.config.devices)
        return points * 86_400 / self.config.poll_interval_s

    def buffer_cap(self) -> int:
        """Records the buffer keeps at most: `max_days` of readings plus headroom."""
        settings = self.config.buffer
        return max(
            1000, round(self.readings_per_day() * settings.max_days * (1 + settings.headroom))
        )

    def read_point_infos(self) -> list[ReadPointInfo]:
        return [
            ReadPointInfo(id=p.id, zone=p.zone, business_step=p.business_step, reader=r.id)
            for r in self.config.readers
            for p in r.read_points
        ]

    def sensor_infos(self) -> list[SensorInfo]:
        return [
            SensorInfo(
                id=d.id,
                zone=d.zone,
                model=self.maps[d.id].model,
                quantities=[p.quantity for p in self.maps[d.id].points],
            )
            for d in self.config.devices
        ]


def load_gateway(path: str | Path) -> LoadedGateway:
    """Load and validate a gateway config and the register maps it refers to."""
    path = Path(path)
    config = _validate(path, GatewayConfig)
    maps: dict[str, RegisterMap] = {}
    cache: dict[Path, RegisterMap] = {}
    for i, device in enumerate(config.devices):
        map_path = (path.parent / device.register_map).resolve()
        if not map_path.is_file():
            line = _line_of(_compose(path), ("devices", i, "register_map"))
            raise ConfigError(
                path,
                [f"line {line}: devices.{i}.register_map: no such file {str(map_path)!r}"],
            )
        if map_path not in cache:
            cache[map_path] = _validate(map_path, RegisterMap)
        maps[device.id] = cache[map_path]
        known = {p.quantity for p in maps[device.id].points}
        unknown = sorted(set(device.calibration.offsets) - known) if device.calibration else []
        if unknown:
            line = _line_of(_compose(path), ("devices", i, "calibration", "offsets"))
            raise ConfigError(
                path,
                [
                    f"line {line}: devices.{i}.calibration.offsets: {unknown} not measured by "
                    f"{maps[device.id].model} (it reports {sorted(known)})"
                ],
            )
    return LoadedGateway(path=path, config=_tokens_resolved(path, config), maps=maps)


def _tokens_resolved(path: Path, config: GatewayConfig) -> GatewayConfig:
    """HTTP readers' token files made absolute (relative to the config file); a missing
    file is a ConfigError naming the field."""
    readers = []
    for i, reader in enumerate(config.readers):
        transport = reader.transport
        if isinstance(transport, HttpReaderTransport) and transport.token_file is not None:
            token_path = (path.parent / transport.token_file).resolve()
            if not token_path.is_file():
                line = _line_of(_compose(path), ("readers", i, "transport", "token_file"))
                raise ConfigError(
                    path,
                    [
                        f"line {line}: readers.{i}.transport.token_file: no such file "
                        f"{str(token_path)!r}"
                    ],
                )
            transport = transport.model_copy(update={"token_file": str(token_path)})
            reader = reader.model_copy(update={"transport": transport})
        readers.append(reader)
    return config.model_copy(update={"readers": tuple(readers)}) if config.readers else config


def load_register_map(path: str | Path) -> RegisterMap:
    """Load and validate one register map file."""
    return _validate(Path(path), RegisterMap)


def _validate(path: Path, model: type[M]) -> M:
    root = _compose(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(path, [f"expected a mapping at the top, found {type(data).__name__}"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, [_problem(root, error) for error in exc.errors()]) from None


def _problem(root: yaml.Node | None, error: Any) -> str:
    loc = tuple(error["loc"])
    where = ".".join(str(part) for part in loc) or "<top>"
    message = error["msg"].removeprefix("Value error, ")
    line = _line_of(root, loc)
    value = error.get("input")
    shown = (
        "" if isinstance(value, dict | list) or error["type"] == "missing" else f" (got {value!r})"
    )
    return f"line {line}: {where}: {message}{shown}"


def _compose(path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(path.read_text())
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror}"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError(
            path, [f"line {line}: not valid YAML: {exc.problem or exc.context}"]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from None


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the deepest node along `loc` that exists in the YAML."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
