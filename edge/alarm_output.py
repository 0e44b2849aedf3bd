"""Drives a local alarm output (relay, siren, beacon) through a Modbus coil."""

from __future__ import annotations

import logging
import time

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.config import AlarmOutput

log = logging.getLogger(__name__)

REFRESH_S = 60.0  # rewrite the coil now and then: a relay module may have power-cycled


class CoilOutput:
    """Keeps one coil in the state the local alarm wants; failures are reported, not raised."""

    def __init__(self, config: AlarmOutput):
        self.config = config
        self._client = ModbusTcpClient(
            config.transport.host, port=config.transport.port, timeout=config.timeout_s, retries=0
        )
        self._written: bool | None = None
        self._written_at = 0.0
        self.failing = False

    def drive(self, on: bool) -> bool | None:
        """Set the coil if it needs it; returns False on a failed write, None if nothing to do."""
        fresh = time.monotonic() - self._written_at < REFRESH_S
        if self._written == on and fresh and not self.failing:
            return None
        try:
            if not self._client.connected and not self._client.connect():
                raise ConnectionError("no connection")
            response = self._client.write_coil(self.config.coil, on, device_id=self.config.unit_id)
            if response.isError():
                raise ModbusException(str(response))
        except (ModbusException, OSError) as exc:
            if not self.failing:
                log.error("alarm output %s: cannot set coil to %s: %s", self.config.id, on, exc)
            self.failing = True
            self._client.close()
            return False
        self.failing = False
        self._written, self._written_at = on, time.monotonic()
        log.info("alarm output %s %s", self.config.id, "ON" if on else "off")
        return True

    def close(self) -> None:
        self._client.close()
