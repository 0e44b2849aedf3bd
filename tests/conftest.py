"""Shared fixtures: real brokers, real databases, real Modbus servers, real processes.

A missing PostgreSQL or Mosquitto fails the tests that need them; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from sqlalchemy.orm import Session

from cloud.adapters.broker import EmbeddedBroker, free_port
from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.migrate import upgrade
from edge.config import load_gateway
from edge.simulator import SensorFarm
from tests.brokers import private_broker  # noqa: E402,F401  (a fixture)
from tests.pg_cluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
SENSORS = ROOT / "firmware-configs" / "sensors"
PG_ADMIN = os.environ.get("COLDCHAIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MOSQUITTO = ("127.0.0.1", int(os.environ.get("COLDCHAIN_TEST_MQTT_PORT", "1883")))


def wait_until(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.2):
    """Poll until predicate() is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


# --- services -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mosquitto() -> tuple[str, int]:
    if not reachable(*MOSQUITTO):
        pytest.fail(
            f"Mosquitto is not running on {MOSQUITTO[0]}:{MOSQUITTO[1]} (make test starts it)"
        )
    return MOSQUITTO


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test, dropped afterwards."""
    name = f"coldchain_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def own_postgres() -> Iterator[tuple[Cluster, str]]:
    """A PostgreSQL cluster of this test's own (tests/pg_cluster.py) that it may stop and
    start, and the URL of a migrated database on it; removed afterwards."""
    cluster = Cluster()
    try:
        cluster.start()
        with psycopg.connect(cluster.url(), autocommit=True, connect_timeout=5) as admin:
            admin.execute("CREATE DATABASE coldchain")
        url = cluster.url("coldchain")
        upgrade(url)
        yield cluster, url
    finally:
        cluster.remove()


@pytest.fixture
def db(pg_url: str) -> Iterator[Session]:
    """A session on a fresh PostgreSQL database; its engine is disposed afterwards."""
    engine = make_engine(pg_url)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cloud.sqlite'}"
    upgrade(url)
    return url


@pytest.fixture
def amqtt() -> Iterator[tuple[str, int]]:
    broker = EmbeddedBroker().start()
    yield broker.host, broker.port
    broker.stop()


# --- simulated sensors and a gateway config that points at them ---------------------------


class FarmThread:
    """A SensorFarm on its own event loop in a thread."""

    def __init__(self, farm: SensorFarm):
        self.farm = farm
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FarmThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.farm.start(), self.loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.farm.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class TestGateway:
    id: str
    site: str
    config: Path
    data_dir: Path


def make_gateway_config(
    directory: Path,
    *,
    sensors: int = 3,
    poll_interval_s: float = 0.5,
    records_per_message: int = 20,
    mqtt_port: int = 1883,
    transport: dict[str, object] | None = None,  # every device's; default: one local TCP port
    mqtt: dict[str, object] | None = None,
) -> TestGateway:
    """A gateway config with `sensors` devices on one fresh local port, ids unique per test."""
    tag = uuid.uuid4().hex[:8]
    gateway, site = f"gw-{tag}", f"site-{tag}"
    port = free_port()
    maps = ["xy-md02.yaml", "renke-rs-ws-n01.yaml", "vaisala-hmp4.yaml", "siemens-qfa3150-mo.yaml"]
    config = {
        "id": gateway,
        "site": {"id": site, "name": f"Test site {tag}", "kind": "warehouse"},
        "poll_interval_s": poll_interval_s,
        "mqtt": {
            "host": "127.0.0.1",
            "port": mqtt_port,
            "records_per_message": records_per_message,
            "heartbeat_s": 2,
            "ack_timeout_s": 5,
        },
        "zones": [{"id": f"{site}-cold", "name": "Cold room", "low": 2.0, "high": 8.0}],
        "devices": [
            {
                "id": f"{site}-s{i}",
                "zone": f"{site}-cold",
                "register_map": str(SENSORS / maps[i % len(maps)]),
                "transport": transport or {"kind": "tcp", "host": "127.0.0.1", "port": port},
                "unit_id": i + 1,
            }
            for i in range(sensors)
        ],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{gateway}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return TestGateway(gateway, site, path, directory / f"{gateway}-data")


@pytest.fixture
def clock_sensors() -> Iterator[Callable[[TestGateway], None]]:
    """Start simulated sensors (value = seconds mod 100) for the gateways given."""
    running: list[FarmThread] = []

    def start(gateway: TestGateway) -> None:
        farm = SensorFarm()
        farm.add_gateway(load_gateway(gateway.config), curve="clock")
        running.append(FarmThread(farm).__enter__())

    yield start
    for farm in running:
        farm.__exit__()


# --- processes ----------------------------------------------------------------------------


class Process:
    """A child process running one of the project's entry points, with its log kept."""

    def __init__(self, log: Path, *args: str):
        self.log = log
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *self.args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )
        return self

    def terminate(self, timeout: float = 20) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def taken_spans(self) -> list[tuple[int, int]]:
        """The (first, last) seq spans each clean gateway run reported on stopping."""
        return [(int(a), int(b)) for a, b in re.findall(r"seq span \((\d+), (\d+)\)", self.text())]


def start_ingest(spawn: Callable[..., Process], name: str, args: tuple[str, ...]) -> Process:
    """Start an ingest worker and wait until it has subscribed."""
    process = spawn(name, *args)
    wait_until(lambda: "ingest connected" in process.text(), 30, f"{name} to connect")
    time.sleep(0.3)  # the SUBSCRIBE follows the CONNACK
    return process


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def spawn(name: str, *args: str) -> Process:
        process = Process(tmp_path / f"{name}.log", *args).start()
        started.append(process)
        return process

    yield spawn
    for process in reversed(started):
        if process.alive():
            process.proc.kill()  # type: ignore[union-attr]
            process.proc.wait(10)  # type: ignore[union-attr]


def gateway_args(gateway: TestGateway, broker: tuple[str, int]) -> tuple[str, ...]:
    return (
        "edge.cli",
        "run",
        str(gateway.config),
        "--data-dir",
        str(gateway.data_dir),
        "--broker",
        f"mqtt://{broker[0]}:{broker[1]}",
    )


def ingest_args(
    database_url: str, broker: tuple[str, int], embedded: bool = False, shared: bool = False
) -> tuple[str, ...]:
    tag = uuid.uuid4().hex[:8]
    args = [
        "cloud.entrypoints.cli",
        "ingest",
        "--database-url",
        database_url,
        "--no-migrate",
        "--broker",
        f"mqtt://{broker[0]}:{broker[1]}",
        "--client-id",
        f"ingest-test-{tag}",
    ]
    if embedded:
        args += ["--no-shared", "--mqtt-version", "3.1.1"]
    else:
        args += ["--session-expiry", "600"]
    if shared:
        # A group of its own, so a test never shares messages with another test's worker.
        args += ["--shared", "--group", f"test-{tag}"]
    return tuple(args)
