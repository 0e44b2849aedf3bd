"""Modbus polling: each device's register blocks become readings with a quality flag.

Devices that share a transport endpoint form a bus and are polled one request at a time;
buses are polled in parallel, one thread each, and a cycle returns every device's polled values.
A failed poll is a flagged reading and a counted error, never an exception out of here.
A device that stops answering backs off (1, 2, 4 ... s, capped) so that it cannot stall its bus.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from edge.bus import Bus, ReadFailed
from edge.config import Device, RtuTransport, TcpTransport, bus_problems
from edge.registers import Point, RegisterKind, RegisterMap, decode_raw, scaled
from edge.wire import Quality

log = logging.getLogger(__name__)

FAILED = (Quality.TIMEOUT, Quality.MODBUS_EXCEPTION)


@dataclass(frozen=True, slots=True)
class PolledValue:
    """One decoded value of one device, as the poller took it."""

    sensor: str
    quantity: str
    value: float | None
    unit: str
    quality: Quality
    taken_at: datetime
    registers: tuple[int, ...] = ()  # raw words, for commissioning; empty when none were read


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Clock:
    """Wall time stamps readings and dates calibrations; monotonic time schedules polls."""

    wall: Callable[[], datetime] = _utc_now
    monotonic: Callable[[], float] = time.monotonic


class RegisterReader(Protocol):
    """What a device needs of its bus (edge.bus.Bus, or a fake in unit tests)."""

    def read(
        self,
        unit_id: int,
        table: RegisterKind,
        first: int,
        count: int,
        *,
        timeout_s: float,
        retries: int,
    ) -> list[int]: ...

    def close(self) -> None: ...


@dataclass
class Backoff:
    """When a device that stopped answering is tried again: 1, 2, 4 ... s later, capped."""

    max_s: float
    first_s: float = 1.0
    failures: int = 0
    next_at: float = -math.inf

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def failed(self, now: float) -> float:
        """Count a poll without an answer; returns the delay before the next attempt."""
        self.failures += 1
        delay = min(self.max_s, self.first_s * 2.0 ** min(self.failures - 1, 32))
        self.next_at = now + delay
        return delay

    def answered(self) -> None:
        self.failures = 0
        self.next_at = -math.inf


@dataclass
class FreezeWatch:
    """A frozen probe: raw registers that have not changed at all for longer than after_s."""

    after_s: float | None
    last: tuple[int, ...] | None = None
    since: float = field(default=0.0)

    def frozen(self, raw: tuple[int, ...], now: float) -> bool:
        if raw != self.last:
            self.last, self.since = raw, now
            return False
        return self.after_s is not None and now - self.since > self.after_s


class ModbusDevice:
    """One sensor on a bus: reads its register blocks, decodes, calibrates and flags them."""

    def __init__(self, device: Device, rmap: RegisterMap, clock: Clock | None = None):
        self.device = device
        self.rmap = rmap
        self.clock = clock or Clock()
        self.backoff = Backoff(device.backoff_max_s)
        self.last_failure: str | None = None  # why the latest read gave no registers
        self._freeze = FreezeWatch(device.stale_after_s)
        self._blocks = rmap.blocks()
        self._faults = {p.quantity: p.fault_values() for p in rmap.points}
        calibration = device.calibration
        self._offsets = dict(calibration.offsets) if calibration else {}
        unknown = sorted(set(self._offsets) - {p.quantity for p in rmap.points})
        if unknown:
            raise ValueError(
                f"device {device.id}: calibration offsets for {unknown}, but {rmap.model} "
                f"reports {[p.quantity for p in rmap.points]}"
            )

    def poll(self, bus: RegisterReader) -> list[PolledValue]:
        """One scheduled poll; while backing off, points flagged timeout and no I/O at all."""
        now = self.clock.monotonic()
        if not self.backoff.due(now):
            return self._flag_all(Quality.TIMEOUT, self.clock.wall())
        polled = self.read(bus, now)
        if polled[0].quality is Quality.TIMEOUT:
            delay = self.backoff.failed(now)
            log.log(
                logging.WARNING if self.backoff.failures == 1 else logging.DEBUG,
                "%s: no answer (%d polls in a row); next try in %.0f s",
                self.device.id,
                self.backoff.failures,
                delay,
            )
        else:  # an answer, even a Modbus exception, means the device is there
            if self.backoff.failures:
                log.info("%s: answers again after %d polls", self.device.id, self.backoff.failures)
            self.backoff.answered()
        return polled

    def read(self, bus: RegisterReader, now: float | None = None) -> list[PolledValue]:
        """Read and decode every point now, whatever the schedule (the probe uses this)."""
        now = self.clock.monotonic() if now is None else now
        taken_at = self.clock.wall()
        words: dict[tuple[str, int], int] = {}
        for table, first, count in self._blocks:
            try:
                registers = bus.read(
                    self.device.unit_id,
                    table,
                    first,
                    count,
                    timeout_s=self.device.timeout_s,
                    retries=self.device.retries,
                )
            except ReadFailed as failure:
                log.debug("%s: %s block at %d: %s", self.device.id, table, first, failure)
                self.last_failure = str(failure)
                return self._flag_all(failure.quality, taken_at)
            words.update({(table, first + i): word for i, word in enumerate(registers)})
        frozen = self._freeze.frozen(tuple(words[key] for key in sorted(words)), now)
        return [self._decode(point, words, taken_at, frozen) for point in self.rmap.points]

    def _decode(
        self, point: Point, words: dict[tuple[str, int], int], taken_at: datetime, frozen: bool
    ) -> PolledValue:
        registers = tuple(words[(point.table, point.address + i)] for i in range(point.width))
        raw = decode_raw(list(registers), point, self.rmap)
        measured = scaled(raw, point)
        # A disconnected probe's sentinel, or a float32 probe reporting NaN: no measurement,
        # so no number to send (never 3276.7 C, flagged or not).
        if raw in self._faults[point.quantity] or not math.isfinite(measured):
            return self._polled(point, None, Quality.SENSOR_FAULT, taken_at, registers)
        value = round(measured + self._offsets.get(point.quantity, 0.0), 6)
        # The valid range is the sensor's own, so it is checked before calibration.
        if not point.in_range(measured):
            quality = Quality.OUT_OF_RANGE
        elif frozen:
            quality = Quality.STALE
        elif self.calibration_overdue(taken_at):
            quality = Quality.CALIBRATION_OVERDUE
        else:
            quality = Quality.OK
        return self._polled(point, value, quality, taken_at, registers)

    def calibration_overdue(self, taken_at: datetime) -> bool:
        """Taken after the (UTC) date the sensor was due for calibration."""
        calibration = self.device.calibration
        return calibration is not None and taken_at.astimezone(UTC).date() > calibration.due

    def _polled(
        self,
        point: Point,
        value: float | None,
        quality: Quality,
        taken_at: datetime,
        registers: tuple[int, ...] = (),
    ) -> PolledValue:
        return PolledValue(
            self.device.id, point.quantity, value, point.unit, quality, taken_at, registers
        )

    def _flag_all(self, quality: Quality, taken_at: datetime) -> list[PolledValue]:
        return [self._polled(p, None, quality, taken_at) for p in self.rmap.points]


BusOpener = Callable[[TcpTransport | RtuTransport], RegisterReader]


class Poller:
    """Polls every device once per cycle: buses in parallel, the devices of a bus in turn."""

    def __init__(self, devices: list[ModbusDevice], open_bus: BusOpener = Bus):
        self.devices = devices
        self.errors: Counter[str] = Counter()  # polls per sensor that gave no reading
        self.cycle_s: dict[str, float] = {}  # bus -> seconds its last cycle took
        problems = bus_problems([d.device for d in devices])
        if problems:
            raise ValueError("; ".join(problems))
        members: dict[str, list[ModbusDevice]] = {}
        for device in devices:
            members.setdefault(device.device.transport.bus, []).append(device)
        self.buses: dict[str, tuple[RegisterReader, list[ModbusDevice]]] = {
            name: (open_bus(on_bus[0].device.transport), on_bus) for name, on_bus in members.items()
        }
        self._pool = (
            ThreadPoolExecutor(max_workers=len(self.buses), thread_name_prefix="modbus-bus")
            if len(self.buses) > 1
            else None
        )

    def cycle(self) -> list[PolledValue]:
        """Poll every device once; all polled values, in config order, for one buffer commit."""
        names = list(self.buses)
        if self._pool is None:
            results = [self._poll_bus(name) for name in names]
        else:
            results = list(self._pool.map(self._poll_bus, names))
        taken = {d.device.id: polled for result in results for d, polled in result}
        out: list[PolledValue] = []
        for device in self.devices:
            polled = taken[device.device.id]
            if any(s.quality in FAILED for s in polled):
                self.errors[device.device.id] += 1
            out.extend(polled)
        return out

    def _poll_bus(self, name: str) -> list[tuple[ModbusDevice, list[PolledValue]]]:
        bus, devices = self.buses[name]
        started = time.monotonic()
        polled = [(device, device.poll(bus)) for device in devices]
        self.cycle_s[name] = time.monotonic() - started
        return polled

    def shared_bus(self, transport: TcpTransport | RtuTransport) -> Bus | None:
        """The bus a sensor already uses at this endpoint, for a relay on the same line."""
        entry = self.buses.get(transport.bus)
        return entry[0] if entry is not None and isinstance(entry[0], Bus) else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for bus, _ in self.buses.values():
            bus.close()
