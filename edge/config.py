"""Gateway configuration: YAML validated once, at load, into frozen typed objects.

Errors name the file, the line, the field and the bad value, so that an engineer on a ladder
with a laptop can fix a config without reading code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.registers import RegisterMap
from edge.wire import Identifier, SensorInfo, SiteInfo, ZoneInfo

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
    """A client certificate per gateway; paths are relative to the config file."""

    ca_file: str
    cert_file: str
    key_file: str


class MqttSettings(_Frozen):
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


class BufferSettings(_Frozen):
    file: str = "buffer.sqlite"
    # Oldest records are dropped (counted, reported) past this many.
    max_records: int = Field(default=5_000_000, ge=1000)


class TcpTransport(_Frozen):
    kind: Literal["tcp"] = "tcp"
    host: str
    port: int = Field(default=502, ge=1, le=65535)


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
    transport: TcpTransport
    unit_id: int = Field(default=1, ge=0, le=247)
    timeout_s: float = Field(default=1.0, gt=0, le=30)


class AlarmOutput(_Frozen):
    """A relay (siren, beacon) driven through a Modbus coil when a zone alarms."""

    id: Identifier
    transport: TcpTransport
    unit_id: int = Field(default=1, ge=0, le=247)
    coil: int = Field(ge=0, le=0xFFFF)
    timeout_s: float = Field(default=1.0, gt=0, le=30)


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
    return LoadedGateway(path=path, config=config, maps=maps)


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
