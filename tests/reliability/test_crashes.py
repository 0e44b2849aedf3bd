"""kill -9 the gateway, and separately the ingest worker: nothing missing, nothing twice."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.conftest import (
    gateway_args,
    ingest_args,
    make_gateway_config,
    start_ingest,
    wait_until,
)
from tests.integration.test_pipeline import assert_taken_times, count_of, readings_of

pytestmark = pytest.mark.integration


def first_seq(log: str) -> int:
    return int(re.search(r"next seq (\d+)", log).group(1))  # type: ignore[union-attr]


def assert_contiguous(url: str, gateway: str, first: int, last: int) -> None:
    rows = readings_of(url, gateway)
    seqs = [r.seq for r in rows]
    assert len(seqs) == len(set(seqs))
    missing = sorted(set(range(first, last + 1)) - set(seqs))
    assert not missing, f"{len(missing)} readings missing, e.g. {missing[:5]}"
    assert seqs[0] == first and seqs[-1] == last
    assert_taken_times(rows)


def test_gateway_killed_mid_run_loses_nothing(
    tmp_path: Path, mosquitto, pg_url, clock_sensors, processes
) -> None:
    gw = make_gateway_config(tmp_path, sensors=4, poll_interval_s=0.2)
    clock_sensors(gw)
    start_ingest(processes, "ingest", ingest_args(pg_url, mosquitto))
    seen_first = None
    for attempt in range(3):
        run = processes(f"gateway-{attempt}", *gateway_args(gw, mosquitto))
        wait_until(lambda run=run: "connected to broker" in run.text(), 20, "gateway to connect")
        if seen_first is None:
            seen_first = first_seq(run.text())
        time.sleep(1.5 + attempt * 0.37)  # kill somewhere in the middle of a write cycle
        run.kill9()
    final = processes("gateway-final", *gateway_args(gw, mosquitto))
    time.sleep(2)
    assert final.terminate() == 0
    ((_, last),) = final.taken_spans()
    wait_until(lambda: count_of(pg_url, gw.id) == last - seen_first + 1, 30, "backlog to drain")
    assert_contiguous(pg_url, gw.id, seen_first, last)


def test_ingest_killed_mid_run_loses_nothing(
    tmp_path: Path, mosquitto, pg_url, clock_sensors, processes
) -> None:
    gw = make_gateway_config(tmp_path, sensors=4, poll_interval_s=0.2, records_per_message=8)
    clock_sensors(gw)
    args = ingest_args(pg_url, mosquitto)
    worker = start_ingest(processes, "ingest-1", args)
    run = processes("gateway", *gateway_args(gw, mosquitto))
    wait_until(lambda: count_of(pg_url, gw.id) > 40, 30, "first readings")
    worker.kill9()
    during = count_of(pg_url, gw.id)
    time.sleep(2)  # the gateway keeps publishing; the broker queues for the dead session
    assert count_of(pg_url, gw.id) == during
    restarted = start_ingest(processes, "ingest-2", args)
    assert "session present: True" in restarted.text()
    time.sleep(1.5)
    assert run.terminate() == 0
    ((first, last),) = run.taken_spans()
    wait_until(lambda: count_of(pg_url, gw.id) == last - first + 1, 30, "queue to drain")
    assert_contiguous(pg_url, gw.id, first, last)
    assert restarted.alive()
