"""One Modbus bus: a serial port (RTU) or a TCP endpoint, one client, one request at a time.

The adapter between the poller and pymodbus. Every library failure becomes a ReadFailed that
says whether the device did not answer (timeout) or answered with a Modbus exception.
"""

from __future__ import annotations

import logging
import threading

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException

from edge.config import RtuTransport, TcpTransport
from edge.registers import RegisterKind
from edge.wire import Quality

log = logging.getLogger(__name__)


class ReadFailed(Exception):
    """A register read that returned no registers; `quality` says how it failed."""

    def __init__(self, quality: Quality, detail: str):
        super().__init__(detail)
        self.quality = quality


class Bus:
    """A Modbus endpoint shared by its devices: its lock keeps requests one at a time."""

    def __init__(self, transport: TcpTransport | RtuTransport):
        self.transport = transport
        self.name = transport.bus
        self._opening = "open" if isinstance(transport, RtuTransport) else "connect to"
        self._lock = threading.Lock()
        self._client: ModbusTcpClient | ModbusSerialClient
        if isinstance(transport, RtuTransport):
            self._client = ModbusSerialClient(
                transport.port,
                baudrate=transport.baudrate,
                parity=transport.parity,
                stopbits=transport.stopbits,
                bytesize=transport.bytesize,
                retries=0,  # retries are ours: per device, counted
            )
        else:
            self._client = ModbusTcpClient(transport.host, port=transport.port, retries=0)

    def read(
        self,
        unit_id: int,
        table: RegisterKind,
        first: int,
        count: int,
        *,
        timeout_s: float,
        retries: int,
    ) -> list[int]:
        """`count` registers from `first`, asking up to 1 + `retries` times; else ReadFailed."""
        with self._lock:
            self._set_timeout(timeout_s)
            read = (
                self._client.read_input_registers
                if table == "input"
                else self._client.read_holding_registers
            )
            problem = "no answer"
            for _ in range(1 + retries):
                try:
                    response = read(first, count=count, device_id=unit_id)
                except ModbusIOException:
                    problem = "no valid answer"
                    # On TCP a late answer would arrive in the next request's place, so the
                    # connection goes; a serial client flushes its input before each request.
                    if isinstance(self._client, ModbusTcpClient):
                        self._client.close()  # type: ignore[no-untyped-call]  # pymodbus: untyped
                    continue
                except Exception as exc:  # every library failure is a failed read, never a crash
                    if not isinstance(exc, ModbusException | OSError):
                        log.warning("%s: unexpected error from pymodbus", self.name, exc_info=True)
                    problem = (
                        str(exc) or type(exc).__name__
                        if self._client.connected
                        else f"cannot {self._opening} {self.name}"
                    )
                    self._client.close()  # type: ignore[no-untyped-call]  # pymodbus: untyped
                    continue
                if response.isError():
                    raise ReadFailed(
                        Quality.MODBUS_EXCEPTION,
                        f"unit {unit_id} answered Modbus exception {response.exception_code}",
                    )
                if len(response.registers) != count:
                    raise ReadFailed(
                        Quality.MODBUS_EXCEPTION,
                        f"unit {unit_id} answered {len(response.registers)} registers, "
                        f"asked for {count}",
                    )
                return list(response.registers)
            raise ReadFailed(
                Quality.TIMEOUT,
                f"unit {unit_id} on {self.name}: {1 + retries} attempt(s) of {timeout_s:g} s: "
                f"{problem}",
            )

    def write_coil(self, unit_id: int, address: int, on: bool, *, timeout_s: float) -> None:
        """Set one coil (a relay); raises ReadFailed with what went wrong."""
        with self._lock:
            self._set_timeout(timeout_s)
            try:
                response = self._client.write_coil(address, on, device_id=unit_id)
            except Exception as exc:  # every library failure is a failed write, never a crash
                if isinstance(self._client, ModbusTcpClient):
                    self._client.close()  # type: ignore[no-untyped-call]  # pymodbus: untyped
                raise ReadFailed(Quality.TIMEOUT, f"unit {unit_id} on {self.name}: {exc}") from None
            if response.isError():
                raise ReadFailed(
                    Quality.MODBUS_EXCEPTION, f"unit {unit_id} on {self.name}: {response}"
                )

    def _set_timeout(self, seconds: float) -> None:
        # pymodbus keeps one timeout per client (connect and answer, and a copy in its
        # transaction manager); devices on one bus may each have their own.
        self._client.comm_params.timeout_connect = seconds
        self._client.transaction.comm_params.timeout_connect = seconds

    def close(self) -> None:
        with self._lock:
            self._client.close()  # type: ignore[no-untyped-call]  # pymodbus: untyped
