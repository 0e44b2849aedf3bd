"""The broker goes away for an hour's worth of readings, or restarts mid-drain: nothing lost.

Nominal load of the gateway here is 5 sensors x 2 quantities every 30 s, 1,200 readings an
hour; the test polls every 0.1 s, so 12 s of outage buffer an hour's worth.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import gateway_args, ingest_args, make_gateway_config, start_ingest, wait_until
from tests.integration.test_pipeline import assert_exactly_once, count_of, readings_of

pytestmark = pytest.mark.integration

FAST_RECONNECT = {"reconnect_min_s": 0.2, "reconnect_max_s": 2.0, "records_per_message": 100}


def assert_in_order_per_sensor(rows) -> None:
    by_sensor = defaultdict(list)
    for r in rows:
        by_sensor[(r.sensor_id, r.quantity)].append(r)
    for key, series in by_sensor.items():
        times = [r.taken_at for r in sorted(series, key=lambda r: r.seq)]
        assert times == sorted(times), f"{key}: sequence order and time order disagree"


def test_an_hour_of_readings_buffered_through_a_broker_outage(
    tmp_path: Path, pg_url, clock_sensors, processes, private_broker
) -> None:
    broker = private_broker().start()
    gw = make_gateway_config(tmp_path, sensors=5, poll_interval_s=0.1, mqtt=FAST_RECONNECT)
    clock_sensors(gw)
    start_ingest(processes, "ingest", ingest_args(pg_url, broker.address))
    run = processes("gateway", *gateway_args(gw, broker.address))
    wait_until(lambda: count_of(pg_url, gw.id) > 50, 30, "readings before the outage")

    broker.stop()
    time.sleep(1)  # what ingest had in hand is committed
    during = count_of(pg_url, gw.id)
    time.sleep(11)
    assert count_of(pg_url, gw.id) == during
    broker.start()
    wait_until(lambda: run.text().count("connected to broker") >= 2, 30, "the gateway to reconnect")
    time.sleep(1)
    assert run.terminate() == 0
    spans = run.taken_spans()
    total = sum(last - first + 1 for first, last in spans)
    assert total - during >= 1200, "the outage did not cover an hour's worth of readings"
    wait_until(lambda: count_of(pg_url, gw.id) == total, 60, "the backlog to drain")
    rows = readings_of(pg_url, gw.id)
    assert_exactly_once(rows, spans, per_poll=2)
    assert_in_order_per_sensor(rows)
    broker.stop()


def test_broker_restarted_while_the_gateway_drains_a_backlog(
    tmp_path: Path, pg_url, clock_sensors, processes, private_broker
) -> None:
    broker = private_broker()
    gw = make_gateway_config(
        tmp_path,
        sensors=5,
        poll_interval_s=0.1,
        mqtt={**FAST_RECONNECT, "records_per_message": 20, "inflight_window": 4},
    )
    clock_sensors(gw)
    broker.start()
    start_ingest(processes, "ingest", ingest_args(pg_url, broker.address))
    broker.stop()
    run = processes("gateway", *gateway_args(gw, broker.address))
    time.sleep(10)  # a backlog builds up with no broker at all
    broker.start()
    wait_until(lambda: count_of(pg_url, gw.id) > 100, 30, "the drain to start")
    broker.stop()  # in the middle of the drain
    time.sleep(1)
    broker.start()
    wait_until(lambda: run.text().count("connected to broker") >= 2, 30, "the gateway to reconnect")
    time.sleep(1)
    assert run.terminate() == 0
    spans = run.taken_spans()
    total = sum(last - first + 1 for first, last in spans)
    wait_until(lambda: count_of(pg_url, gw.id) == total, 60, "the backlog to drain")
    rows = readings_of(pg_url, gw.id)
    assert_exactly_once(rows, spans, per_poll=2)
    assert_in_order_per_sensor(rows)
    broker.stop()
