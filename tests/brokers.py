"""A Mosquitto of a test's own, on its own port and config, that the test may stop and start."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloud.adapters.broker import free_port


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("the mosquitto binary is not installed (apt-get install mosquitto)")


class PrivateMosquitto:
    """mosquitto -c <config> as a child process, with persistence in the test's directory."""

    def __init__(self, directory: Path, extra: str = "", port: int | None = None):
        self.directory = directory
        self.port = port or free_port()
        self.config = directory / "mosquitto.conf"
        directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # Run as whoever runs the tests, so it can read the test's files.
            f"user {getpass.getuser()}\n"
            f"persistence true\npersistence_location {directory}/\n"
            "autosave_interval 1\nmax_queued_messages 0\nmax_inflight_messages 0\n"
            f"log_dest file {directory}/mosquitto.log\n" + (extra or "allow_anonymous true\n")
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateMosquitto:
        seen = len(self.log())
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if " running" in self.log()[seen:]:
                time.sleep(0.2)
                return self
            if self.proc.poll() is not None:
                pytest.fail(f"mosquitto exited: {self.log()}")
            time.sleep(0.05)
        pytest.fail(f"mosquitto did not start: {self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Callable[..., PrivateMosquitto]]:
    """Make private brokers for a test; every one is stopped at the end, pass or fail."""
    made: list[PrivateMosquitto] = []

    def make(name: str = "broker", **kwargs: object) -> PrivateMosquitto:
        broker = PrivateMosquitto(tmp_path / name, **kwargs)  # type: ignore[arg-type]
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()
