"""Modbus polling: each device's register blocks become readings with a quality flag.

A failed poll is a flagged reading and a counted error, never an exception out of here.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.config import Device
from edge.registers import Point, RegisterMap, decode_raw, scaled
from edge.wire import Quality

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sample:
    """One decoded value of one device, as the poller took it."""

    sensor: str
    quantity: str
    value: float | None
    unit: str
    quality: Quality
    taken_at: datetime


class ModbusDevice:
    """One sensor reached over Modbus TCP: reads its register blocks and decodes its points."""

    def __init__(self, device: Device, rmap: RegisterMap):
        self.device = device
        self.rmap = rmap
        self._blocks = rmap.blocks()
        self._client = ModbusTcpClient(
            device.transport.host,
            port=device.transport.port,
            timeout=device.timeout_s,
            retries=0,
        )

    def poll(self) -> list[Sample]:
        """Read every point once; failures become samples flagged with what went wrong."""
        taken_at = datetime.now(UTC)
        words: dict[tuple[str, int], int] = {}
        for kind, first, count in self._blocks:
            quality = self._read_block(kind, first, count, words)
            if quality is not Quality.OK:
                return [self._flagged(p, quality, taken_at) for p in self.rmap.points]
        return [self._decode(point, words, taken_at) for point in self.rmap.points]

    def _read_block(
        self, kind: str, first: int, count: int, words: dict[tuple[str, int], int]
    ) -> Quality:
        read = (
            self._client.read_input_registers
            if kind == "input"
            else self._client.read_holding_registers
        )
        try:
            if not self._client.connected and not self._client.connect():
                return Quality.TIMEOUT
            response = read(first, count=count, device_id=self.device.unit_id)
        except (ModbusException, OSError) as exc:
            log.debug("%s: %s block at %d: %s", self.device.id, kind, first, exc)
            self._client.close()
            return Quality.TIMEOUT
        if response.isError():
            log.debug("%s: Modbus exception %s", self.device.id, response)
            return Quality.MODBUS_EXCEPTION
        for offset, word in enumerate(response.registers):
            words[(kind, first + offset)] = word
        return Quality.OK

    def _decode(
        self, point: Point, words: dict[tuple[str, int], int], taken_at: datetime
    ) -> Sample:
        registers = [words[(point.table, point.address + i)] for i in range(point.width)]
        raw = decode_raw(registers, point, self.rmap)
        value = scaled(raw, point)
        out_of_range = (
            raw in point.sentinels
            or (point.valid_min is not None and value < point.valid_min)
            or (point.valid_max is not None and value > point.valid_max)
        )
        if out_of_range:
            return self._flagged(point, Quality.OUT_OF_RANGE, taken_at, value)
        return Sample(
            self.device.id, point.quantity, round(value, 6), point.unit, Quality.OK, taken_at
        )

    def _flagged(
        self, point: Point, quality: Quality, taken_at: datetime, value: float | None = None
    ) -> Sample:
        return Sample(self.device.id, point.quantity, value, point.unit, quality, taken_at)

    def close(self) -> None:
        self._client.close()


class Poller:
    """Polls every device of a gateway once per cycle and counts the errors per sensor."""

    def __init__(self, devices: list[ModbusDevice]):
        self.devices = devices
        self.errors: Counter[str] = Counter()

    def cycle(self) -> list[Sample]:
        samples: list[Sample] = []
        for device in self.devices:
            taken = device.poll()
            if any(s.quality in (Quality.TIMEOUT, Quality.MODBUS_EXCEPTION) for s in taken):
                self.errors[device.device.id] += 1
            samples.extend(taken)
        return samples

    def close(self) -> None:
        for device in self.devices:
            device.close()
