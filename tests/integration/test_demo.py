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
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from cloud.adapters.broker import free_port
from cloud.entrypoints.demo_seed import DEMO_PASSWORD
from tests.conftest import ROOT, wait_until

pytestmark = pytest.mark.integration

ZONES = [
    "wh-leeds-cold1",
    "wh-leeds-amb1",
    "wh-bristol-cold1",
    "wh-bristol-amb1",
    "truck-07-reefer",
]


def _post(opener: urllib.request.OpenerDirector, port: int, body: dict) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/_dash-update-component",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with opener.open(request, timeout=5) as response:
        return response.read().decode()


def overview(port: int) -> str:
    """The overview as the demo's viewer sees it (logged in with the demo's seeded account)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    login = {
        "output": "..login-location.href...login-message.children..",
        "outputs": [
            {"id": "login-location", "property": "href"},
            {"id": "login-message", "property": "children"},
        ],
        "inputs": [
            {"id": "login-submit", "property": "n_clicks", "value": 1},
            {"id": "login-password", "property": "n_submit", "value": 0},
        ],
        "state": [
            {"id": "login-username", "property": "value", "value": "viewer"},
            {"id": "login-password", "property": "value", "value": DEMO_PASSWORD},
            {"id": "login-location", "property": "search", "value": ""},
        ],
        "changedPropIds": ["login-submit.n_clicks"],
    }
    zones = '{"type":"overview-zone","zone":["ALL"]}'
    gateways = '{"gateway":["ALL"],"type":"overview-gateway"}'
    names = [
        "overview-counts.children",
        "overview-updated.children",
        f"{zones}.children",
        f"{gateways}.children",
        "overview-sites.children",
        "overview-seen.data",
    ]
    refresh = {
        "output": ".." + "...".join(names) + "..",
        "outputs": [
            {"id": "overview-counts", "property": "children"},
            {"id": "overview-updated", "property": "children"},
            [],
            [],
            {"id": "overview-sites", "property": "children"},
            {"id": "overview-seen", "property": "data"},
        ],
        "inputs": [{"id": "overview-tick", "property": "n_intervals", "value": 1}],
        "changedPropIds": ["overview-tick.n_intervals"],
        "state": [{"id": "overview-seen", "property": "data", "value": None}],
    }
    try:
        _post(opener, port, login)
        return _post(opener, port, refresh)  # no cards shown yet: every site drawn
    except OSError:
        return ""


def max_seqs(database: Path) -> dict[str, int]:
    if not database.exists():
        return {}
    with sqlite3.connect(database) as db:
        query = (  # the gateways' own readings, not the demo seed's history
            "SELECT gateway_id, max(seq) FROM readings "
            "WHERE gateway_id NOT LIKE 'demo-%' GROUP BY 1"
        )
        return dict(db.execute(query).fetchall())


def run_demo(
    data_dir: Path, port: int, ready: Callable[[], bool] = lambda: True
) -> tuple[subprocess.CompletedProcess[str], str]:
    log = data_dir.parent / f"demo-{port}.log"
    with open(log, "w") as out:
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloud.entrypoints.demo",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            text=True,
        )
    try:

        def all_zones_live() -> bool:
            text = overview(port)
            live = all(f'"zone": "{z}"' in text or f'"zone":"{z}"' in text for z in ZONES)
            return live and "ONLINE" in text and text.count(' C"') >= 5

        wait_until(all_zones_live, 60, "every demo zone to show a temperature", every=1)
        wait_until(ready, 30, "the demo's readings to advance", every=1)
        page = overview(port)
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=30)
    return subprocess.CompletedProcess(demo.args, code, log.read_text(), ""), page


def assert_stopped_cleanly(run: subprocess.CompletedProcess[str]) -> None:
    """Ctrl-C ends the demo with code 0 and nothing left half-stopped in its output."""
    assert run.returncode == 0, run.stdout
    assert "demo stopped" in run.stdout
    # amqtt's tasks must all be finished when its loop stops, and nothing may raise on the way
    assert "Task was destroyed" not in run.stdout, run.stdout
    assert "Traceback" not in run.stdout, run.stdout


def test_demo_runs_stops_cleanly_and_continues(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = data / "coldchain.sqlite"
    # The seeded history fills the cards at once: wait for every gateway's own readings.
    first, page = run_demo(data, free_port(), ready=lambda: len(max_seqs(database)) == 3)
    assert first.returncode == 0, first.stdout
    assert "Leeds distribution centre" in page and "Truck 07" in page
    assert "demo stopped" in first.stdout
    assert_stopped_cleanly(first)
    before = max_seqs(database)
    assert len(before) == 3

    def advanced() -> bool:
        now = max_seqs(database)
        return all(now[g] > before[g] for g in before)

    second, _ = run_demo(data, free_port(), ready=advanced)
    assert second.returncode == 0, second.stdout
    assert_stopped_cleanly(second)
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
                "cloud.entrypoints.demo",
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
