"""coldchain-demo: the whole product on one machine, in one process tree.

An embedded broker (amqtt) runs in this process; simulated sensors, three gateways, the
ingest worker and the control room run as child processes with the real entry points and
the example configs in firmware-configs/. Ctrl-C stops everything. State stays in the data
directory, so a second run continues where the first stopped.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from cloud.adapters.broker import EmbeddedBroker, port_is_free
from cloud.adapters.migrate import upgrade
from cloud.entrypoints.demo_seed import (
    DEMO_PASSWORD,
    FAILURE_ZONE,
    NotADemoDatabase,
    mark_as_demo,
    seed,
)

log = logging.getLogger("coldchain.demo")

ROOT = Path(__file__).resolve().parents[2]
GATEWAYS = ("warehouse-leeds.yaml", "warehouse-bristol.yaml", "truck-07.yaml")


class Supervisor:
    """Starts child processes and stops them all, in reverse order, on the way out."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(self, name: str, *args: str) -> None:
        path = self.logs / f"{name}.log"
        with open(path, "ab") as out:  # the child keeps its own copy of the descriptor
            child = subprocess.Popen(
                [sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )
        self.children.append((name, child))
        log.info("started %s (pid %d), log %s", name, child.pid, path)

    def failed(self) -> str | None:
        for name, child in self.children:
            if child.poll() is not None:
                return f"{name} exited with code {child.returncode} (see {self.logs / name}.log)"
        return None

    def stop(self) -> None:
        for _, child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, child in reversed(self.children):
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", name)
                child.kill()


def _audit_keeping(data_dir: Path) -> None:
    """The demo's audit key and checkpoint file, beside its database, for every child process
    (a real installation keeps both away from the database's disks)."""
    key_file = data_dir / "audit.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32) + "\n")
        key_file.chmod(0o600)
    os.environ.setdefault("COLDCHAIN_AUDIT_KEY_FILE", str(key_file))
    os.environ.setdefault("COLDCHAIN_AUDIT_CHECKPOINTS", str(data_dir / "audit-checkpoints.jsonl"))


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Buffers, database and logs live here.",
)
@click.option("--broker", help="Use this broker (mqtt://host:port) instead of the embedded one.")
@click.option("--port", type=int, default=8050, show_default=True, help="Control room port.")
def main(data_dir: Path, broker: str | None, port: int) -> None:
    """Run the demo: sensors -> gateways -> broker -> ingest -> database -> control room."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not port_is_free("127.0.0.1", port):
        click.echo(
            f"port {port} is already in use, so the control room cannot start there: "
            f"stop what holds it or run with --port",
            err=True,
        )
        sys.exit(2)
    data_dir = data_dir.resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    database_file = data_dir / "coldchain.sqlite"
    database_url = f"sqlite:///{database_file}"
    created = not database_file.exists()
    _audit_keeping(data_dir)
    upgrade(database_url)
    try:
        if created:
            mark_as_demo(database_url)  # the demo's own: only this one gets its accounts
        if seed(database_url):
            click.echo("demo data seeded: products, batches, users, a week of history")
    except NotADemoDatabase as exc:
        click.echo(f"{exc}", err=True)
        sys.exit(2)

    embedded = None
    if broker is None:
        embedded = EmbeddedBroker().start()
        broker = embedded.url
    configs = [str(ROOT / "firmware-configs" / "gateways" / name) for name in GATEWAYS]
    supervisor = Supervisor(logs)
    stop = _stop_on_signals()
    try:
        supervisor.spawn(
            "sensors",
            "cloud.entrypoints.demo_seed",
            "sensors",
            *configs,
            "--data-dir",
            str(data_dir),
        )
        time.sleep(1.0)
        supervisor.spawn(
            "ingest",
            "cloud.entrypoints.cli",
            "ingest",
            "--database-url",
            database_url,
            "--broker",
            broker,
            "--no-migrate",
            *(["--no-shared", "--mqtt-version", "3.1.1"] if embedded else []),
        )
        for config in configs:
            name = Path(config).stem
            supervisor.spawn(
                f"gateway-{name}",
                "edge.cli",
                "run",
                config,
                "--data-dir",
                str(data_dir / "gateways" / name),
                "--broker",
                broker,
            )
        supervisor.spawn(  # alerts for new excursions and holds, escalation, expiry
            "scheduler",
            "cloud.entrypoints.cli",
            "scheduler",
            "--database-url",
            database_url,
            "--interval",
            "10",
        )
        supervisor.spawn(
            "dashboard", "dashboard.cli", "--database-url", database_url, "--port", str(port)
        )
        click.echo(
            f"\ncontrol room: http://127.0.0.1:{port}/   broker: {broker}   "
            f"data: {data_dir}\nlog in as qa, operator, viewer or admin, password "
            f"{DEMO_PASSWORD}\ncooling failure: python -m cloud.entrypoints.demo_seed "
            f"cooling-failure "
            f"{FAILURE_ZONE} --data-dir {data_dir} (--off to restore)\nCtrl-C stops the demo.\n"
        )
        while not stop():
            problem = supervisor.failed()
            if problem:
                click.echo(f"demo stopping: {problem}", err=True)
                raise SystemExit(1)
            time.sleep(0.5)
    finally:
        supervisor.stop()
        if embedded is not None:
            embedded.stop()
        log.info("demo stopped")


def _stop_on_signals() -> Callable[[], bool]:
    flag = {"stop": False}

    def handler(*_: object) -> None:
        flag["stop"] = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return lambda: flag["stop"]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
