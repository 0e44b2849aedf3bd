"""Drives a local alarm output (relay, siren, beacon) through a Modbus coil.

A relay module on the same RS-485 bus as the sensors shares the poller's Bus, so its writes
queue behind the polls instead of colliding with them on the line.
"""

from __future__ import annotations

import logging
import time

from edge.bus import Bus, ReadFailed
from edge.config import AlarmOutput

log = logging.getLogger(__name__)

REFRESH_S = 60.0  # rewrite the coil now and then: a relay module may have power-cycled


class CoilOutput:
    """Keeps one coil in the state the local alarm wants; failures are reported, not raised."""

    def __init__(self, config: AlarmOutput, bus: Bus | None = None):
        self.config = config
        self._own_bus = bus is None
        self.bus = bus or Bus(config.transport)
        self._written: bool | None = None
        self._written_at = 0.0
        self.failing = False

    def drive(self, on: bool) -> bool | None:
        """Set the coil if it needs it; returns False on a failed write, None if nothing to do."""
        fresh = time.monotonic() - self._written_at < REFRESH_S
        if self._written == on and fresh and not self.failing:
            return None
        try:
            self.bus.write_coil(
                self.config.unit_id, self.config.coil, on, timeout_s=self.config.timeout_s
            )
        except ReadFailed as exc:
            if not self.failing:
                log.error("alarm output %s: cannot set coil to %s: %s", self.config.id, on, exc)
            self.failing = True
            return False
        self.failing = False
        self._written, self._written_at = on, time.monotonic()
        log.info("alarm output %s %s", self.config.id, "ON" if on else "off")
        return True

    def close(self) -> None:
        if self._own_bus:
            self.bus.close()
