"""What the gateway reports about the machine it runs on, and its systemd handshake."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import socket
from pathlib import Path

log = logging.getLogger(__name__)

_TIME_ERROR = 5  # adjtimex(2): the kernel clock is not synchronised


def clock_synchronised() -> bool | None:
    """Whether the kernel says NTP has the clock in sync; None where it cannot be asked."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex with modes = 0: read only
        state: int = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR


def disk_free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


class Systemd:
    """sd_notify without libsystemd: READY=1 at start, WATCHDOG=1 from the poll loop."""

    def __init__(self) -> None:
        self.address = os.environ.get("NOTIFY_SOCKET")
        usec = os.environ.get("WATCHDOG_USEC")
        self.watchdog_s = int(usec) / 1e6 if usec and usec.isdigit() else None

    def notify(self, state: str) -> None:
        if not self.address:
            return
        address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(state.encode(), address)
        except OSError as exc:
            log.warning("sd_notify(%s) failed: %s", state, exc)
