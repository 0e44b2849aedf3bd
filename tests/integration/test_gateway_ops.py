"""What a field engineer sees: heartbeats with health metrics, and the buffer command."""

from __future__ import annotations

import csv
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.adapters.broker import free_port
from edge import wire
from tests.conftest import ROOT, gateway_args, make_gateway_config, wait_until
from tests.unit.test_buffer import old_format_buffer

pytestmark = pytest.mark.integration


def test_heartbeat_reports_health(tmp_path: Path, mosquitto, clock_sensors, processes) -> None:
    gw = make_gateway_config(tmp_path, sensors=2, poll_interval_s=0.3)
    clock_sensors(gw)
    beats: list[wire.Heartbeat] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hb-{gw.id}")
    client.on_connect = lambda c, *_: c.subscribe(wire.topic(gw.site, gw.id, "heartbeat"), qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, m: beats.append(wire.decode(m.topic, m.payload)[1])
    client.connect(*mosquitto)
    client.loop_start()
    assert subscribed.wait(10)
    run = processes("gateway", *gateway_args(gw, mosquitto))
    wait_until(lambda: len(beats) >= 2, 20, "two heartbeats")
    assert run.terminate() == 0
    client.loop_stop()
    client.disconnect()
    beat = beats[-1]
    assert beat.gateway == gw.id and beat.site == gw.site
    assert beat.disk_free_bytes is not None and beat.disk_free_bytes > 0
    assert beat.clock_synchronised in (True, False, None)
    assert beat.uptime_s is not None and beat.uptime_s > 0
    assert beat.dropped_records == 0 and beat.buffer_depth >= 0
    assert beat.alarms == [] and beat.refused_envelopes == 0


def test_buffer_command_shows_and_exports_what_waits(
    tmp_path: Path, clock_sensors, processes
) -> None:
    # No broker at all: every reading waits in the buffer.
    gw = make_gateway_config(tmp_path, sensors=2, poll_interval_s=0.2, mqtt_port=free_port())
    clock_sensors(gw)
    run = processes("gateway", *gateway_args(gw, ("127.0.0.1", free_port())))
    wait_until(lambda: gw.data_dir.joinpath("buffer.sqlite").exists(), 10, "the buffer")
    time.sleep(2)
    assert run.terminate() == 0
    ((first, last),) = run.taken_spans()
    export = tmp_path / "waiting.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "buffer",
            str(gw.config),
            "--data-dir",
            str(gw.data_dir),
            "--export",
            str(export),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    waiting = last - first + 1
    assert f"waiting     {waiting} records" in result.stdout
    assert "dropped     0" in result.stdout
    assert f"next seq    {last + 1}" in result.stdout
    with open(export) as rows:
        records = list(csv.DictReader(rows))
    assert len(records) == waiting
    assert [int(r["seq"]) for r in records] == list(range(first, last + 1))
    assert {r["quantity"] for r in records} == {"temperature", "humidity"}
    assert all(r["taken_at"].endswith("Z") for r in records)
    # The clock curve runs past a probe's physical range for part of every 100 s (flagged
    # out_of_range) and a loaded machine may time a poll out: the export says so, as it is.
    assert {r["quality"] for r in records} <= {q.value for q in wire.Quality}
    assert any(r["quality"] == "ok" for r in records)


def test_buffer_command_migrates_and_exports_an_old_format_buffer(tmp_path: Path) -> None:
    gw = make_gateway_config(tmp_path, sensors=1, poll_interval_s=1, mqtt_port=free_port())
    gw.data_dir.mkdir(parents=True, exist_ok=True)
    old_format_buffer(gw.data_dir / "buffer.sqlite")
    export = tmp_path / "old.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "buffer",
            str(gw.config),
            "--data-dir",
            str(gw.data_dir),
            "--export",
            str(export),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "waiting     7 records" in result.stdout
    assert "dropped     7" in result.stdout and "next seq    1011" in result.stdout
    with open(export) as rows:
        records = list(csv.DictReader(rows))
    assert [int(r["seq"]) for r in records] == [1001, 1002, 1004, 1005, 1006, 1007, 1008]
    assert [r["kind"] for r in records].count("event") == 1
