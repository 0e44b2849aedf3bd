"""Simulated Modbus sensors: pymodbus servers that serve a register map with a live curve.

Used by the demo, the tests and on the bench. Values are computed from the wall clock when a
request arrives, so a reading's value tells when it was really taken.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge.config import LoadedGateway, RtuTransport, TcpTransport, Zone
from edge.registers import RegisterMap, encode_value

log = logging.getLogger(__name__)

Curve = Callable[[str, float], float]  # (quantity, unix time) -> value


def zone_curve(zone: Zone, period_s: float = 600.0, phase: float = 0.0) -> Curve:
    """A slow wave inside the zone's limits, with humidity around 45 %RH."""
    low = zone.low if zone.low is not None else 15.0
    high = zone.high if zone.high is not None else 25.0
    middle, swing = (low + high) / 2, (high - low) * 0.3

    def value(quantity: str, now: float) -> float:
        wave = math.sin(2 * math.pi * now / period_s + phase)
        if quantity == "humidity":
            return 45.0 + 5.0 * wave
        return middle + swing * wave

    return value


def clock_curve(quantity: str, now: float) -> float:
    """Seconds of the current 100-second window: a reading's value dates it (tests use this)."""
    return now % 100.0


@dataclass
class SimulatedSensor:
    unit_id: int
    rmap: RegisterMap
    curve: Curve
    reads: int = 0
    silent: bool = False  # a dead sensor: requests to it are never answered

    def device(self) -> SimDevice:
        """A pymodbus device whose registers are filled from the curve on every read."""
        sizes = {"input": 1, "holding": 1}
        for point in self.rmap.points:
            sizes[point.table] = max(sizes[point.table], point.address + point.width)
        bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
        return SimDevice(
            self.unit_id,
            simdata=(
                list(bits),
                list(bits),
                [SimData(0, values=[0] * sizes["holding"], datatype=DataType.REGISTERS)],
                [SimData(0, values=[0] * sizes["input"], datatype=DataType.REGISTERS)],
            ),
            action=functools.partial(_fill, self),
        )


async def _fill(
    sensor: SimulatedSensor,
    function_code: int,
    start: int,
    _address: int,
    _count: int,
    registers: list[int],
    _set_values: object,
) -> None:
    kind = {3: "holding", 4: "input"}.get(function_code)
    if kind is None:
        return None
    sensor.reads += 1
    now = time.time()
    for point in sensor.rmap.points:
        if point.table != kind:
            continue
        for i, word in enumerate(
            encode_value(sensor.curve(point.quantity, now), point, sensor.rmap)
        ):
            index = point.address - start + i
            if 0 <= index < len(registers):
                registers[index] = word
    return None


def _answering(sensors: list[SimulatedSensor]) -> Callable[[bool, ModbusPDU], ModbusPDU | None]:
    """A pymodbus trace hook that drops requests nobody on the bus would answer.

    pymodbus annotates the hook as returning a PDU, yet takes None as "no answer".
    """
    by_unit = {s.unit_id: s for s in sensors}

    def trace(sending: bool, pdu: ModbusPDU) -> ModbusPDU | None:
        if sending:
            return pdu
        sensor = by_unit.get(pdu.dev_id)
        # As on a real RS-485 bus: an absent or dead unit is silence, and the client times out.
        return None if sensor is None or sensor.silent else pdu

    return trace


class SensorFarm:
    """Every device of one or more gateway configs, served on the endpoints they name."""

    def __init__(self) -> None:
        # bus (tcp://host:port or rtu://path) -> its transport and the sensors on it
        self.buses: dict[str, tuple[TcpTransport | RtuTransport, list[SimulatedSensor]]] = {}
        self._servers: list[ModbusTcpServer | ModbusSerialServer] = []

    def add(self, transport: TcpTransport | RtuTransport, sensor: SimulatedSensor) -> None:
        self.buses.setdefault(transport.bus, (transport, []))[1].append(sensor)

    def add_gateway(self, loaded: LoadedGateway, curve: str = "zone") -> None:
        zones = {z.id: z for z in loaded.config.zones}
        for i, device in enumerate(loaded.config.devices):
            chosen = clock_curve if curve == "clock" else zone_curve(zones[device.zone], phase=i)
            self.add(
                device.transport, SimulatedSensor(device.unit_id, loaded.maps[device.id], chosen)
            )

    async def start(self) -> None:
        for transport, sensors in self.buses.values():
            devices = [s.device() for s in sensors]
            server: ModbusTcpServer | ModbusSerialServer
            if isinstance(transport, RtuTransport):
                server = ModbusSerialServer(
                    devices,
                    port=transport.port,
                    baudrate=transport.baudrate,
                    parity=transport.parity,
                    stopbits=transport.stopbits,
                    bytesize=transport.bytesize,
                    trace_pdu=_answering(sensors),  # type: ignore[arg-type]  # see _answering
                )
            else:
                server = ModbusTcpServer(
                    devices,
                    address=(transport.host, transport.port),
                    trace_pdu=_answering(sensors),  # type: ignore[arg-type]  # see _answering
                )
            try:
                await server.serve_forever(background=True)
            except RuntimeError as exc:  # pymodbus says only "Could not start listen"
                await self.stop()
                raise RuntimeError(
                    f"cannot serve {transport.settings()}: is the port there and free? ({exc})"
                ) from None
            self._servers.append(server)
            log.info("simulating %d sensor(s) on %s", len(sensors), transport.settings())

    async def stop(self) -> None:
        for server in self._servers:
            await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus: untyped
        self._servers.clear()


async def serve_forever(farm: SensorFarm) -> None:
    await farm.start()
    try:
        await asyncio.Event().wait()
    finally:
        await farm.stop()
