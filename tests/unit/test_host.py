"""Host facts and the systemd handshake, over a real unix datagram socket."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from edge.host import Systemd, clock_synchronised, disk_free_bytes


def test_clock_state_is_a_bool_or_unknown() -> None:
    assert clock_synchronised() in (True, False, None)


def test_disk_free(tmp_path: Path) -> None:
    free = disk_free_bytes(tmp_path)
    assert free is not None and free > 0
    assert disk_free_bytes(tmp_path / "missing") is None


def test_sd_notify_reaches_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "20000000")
        systemd = Systemd()
        assert systemd.watchdog_s == 20.0
        systemd.notify("READY=1")
        systemd.notify("WATCHDOG=1")
        assert listener.recv(64) == b"READY=1"
        assert listener.recv(64) == b"WATCHDOG=1"


def test_sd_notify_without_systemd_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    Systemd().notify("READY=1")
