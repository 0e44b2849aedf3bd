"""make demo's entry point: everything starts, the control room fills, Ctrl-C stops it all."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from cloud.broker import free_port
from tests.conftest import ROOT, wait_until

pytestmark = pytest.mark.integration

ZONES = [
    "wh-leeds-cold1",
    "wh-leeds-amb1",
    "wh-bristol-cold1",
    "wh-bristol-amb1",
    "truck-07-reefer",
]


def overview(port: int) -> str:
    body = json.dumps(
        {
            "output": "..overview-sites.children...overview-updated.children..",
            "outputs": [
                {"id": "overview-sites", "property": "children"},
                {"id": "overview-updated", "property": "children"},
            ],
            "inputs": [{"id": "overview-tick", "property": "n_intervals", "value": 1}],
            "changedPropIds": ["overview-tick.n_intervals"],
            "state": [],
        }
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/_dash-update-component",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def max_seqs(database: Path) -> dict[str, int]:
    if not database.exists():
        return {}
    with sqlite3.connect(database) as db:
        return dict(db.execute("SELECT gateway_id, max(seq) FROM readings GROUP BY 1").fetchall())


def run_demo(
    data_dir: Path, port: int, ready: Callable[[], bool] = lambda: True
) -> tuple[subprocess.CompletedProcess[str], str]:
    log = data_dir.parent / f"demo-{port}.log"
    with open(log, "w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "cloud.demo", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            text=True,
        )
    try:

        def all_zones_live() -> bool:
            text = overview(port)
            return all(f"overview-zone-{z}" in text for z in ZONES) and text.count(' C"') >= 5

        wait_until(all_zones_live, 60, "every demo zone to show a temperature", every=1)
        wait_until(ready, 30, "the demo's readings to advance", every=1)
        page = overview(port)
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=30)
    return subprocess.CompletedProcess(demo.args, code, log.read_text(), ""), page


def test_demo_runs_stops_cleanly_and_continues(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first, page = run_demo(data, free_port())
    assert first.returncode == 0, first.stdout
    assert "Leeds distribution centre" in page and "Truck 07" in page
    assert "demo stopped" in first.stdout
    database = data / "coldchain.sqlite"
    before = max_seqs(database)
    assert len(before) == 3

    def advanced() -> bool:
        now = max_seqs(database)
        return all(now[g] > before[g] for g in before)

    second, _ = run_demo(data, free_port(), ready=advanced)
    assert second.returncode == 0, second.stdout
    after = max_seqs(database)
    with sqlite3.connect(database) as db:
        duplicates = db.execute(
            "SELECT count(*) FROM (SELECT sensor_id, quantity, taken_at FROM readings "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1)"
        ).fetchone()[0]
    assert all(after[g] > before[g] for g in before), "the second run did not continue"
    assert duplicates == 0


def test_demo_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "cloud.demo",
                "--data-dir",
                str(tmp_path / "d"),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert result.returncode == 2
    assert f"port {port} is already in use" in result.stderr
