"""Modbus RTU and commissioning: real pymodbus RTU servers on a socat pseudo-terminal pair.

The simulated sensors listen on one end of the pair, the poller (or a gateway process, or
`coldchain-gateway probe`) uses the other, as if both were on one RS-485 bus.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.adapters.broker import free_port
from edge.config import Device, RtuTransport, TcpTransport, load_gateway, load_register_map
from edge.poller import ModbusDevice, Poller
from edge.simulator import SensorFarm, SimulatedSensor, clock_curve
from edge.wire import Quality
from tests.conftest import (
    ROOT,
    SENSORS,
    FarmThread,
    gateway_args,
    ingest_args,
    make_gateway_config,
    start_ingest,
    wait_until,
)
from tests.integration.test_pipeline import (
    assert_exactly_once,
    assert_taken_times,
    count_of,
    readings_of,
)

pytestmark = pytest.mark.integration

MAPS = {
    unit: load_register_map(SENSORS / name)
    for unit, name in enumerate(
        ["xy-md02.yaml", "vaisala-hmp4.yaml", "renke-rs-ws-n01.yaml"], start=1
    )
}
DEAD_UNIT = 9
TIMEOUT_S, RETRIES = 0.4, 1


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals (sensor end, gateway end): a bus with nothing in between."""
    socat = shutil.which("socat")
    if socat is None:
        pytest.fail("socat is not installed (apt-get install -y socat); the RTU tests need it")
    sensors_end, gateway_end = tmp_path / "rs485-sensors", tmp_path / "rs485-gateway"
    with open(tmp_path / "socat.log", "wb") as log:
        process = subprocess.Popen(
            [
                socat,
                "-d",
                "-d",
                f"pty,raw,echo=0,link={sensors_end}",
                f"pty,raw,echo=0,link={gateway_end}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: sensors_end.exists() and gateway_end.exists(), 10, "socat's pty pair", 0.02
        )
        yield str(sensors_end), str(gateway_end)
    finally:
        process.terminate()
        process.wait(10)


def rtu(port: str) -> RtuTransport:
    return RtuTransport(kind="rtu", port=port, baudrate=9600)


def farm_of(transport: RtuTransport | TcpTransport, sensors: list[SimulatedSensor]) -> SensorFarm:
    farm = SensorFarm()
    for sensor in sensors:
        farm.add(transport, sensor)
    return farm


def bus_devices(port: str) -> list[ModbusDevice]:
    """The three live sensors of MAPS and one that is not on the bus at all."""
    units = {**MAPS, DEAD_UNIT: MAPS[1]}
    return [
        ModbusDevice(
            Device(
                id=f"unit-{unit}",
                zone="cold",
                register_map="-",
                transport=rtu(port),
                unit_id=unit,
                timeout_s=TIMEOUT_S,
                retries=RETRIES,
            ),
            rmap,
        )
        for unit, rmap in units.items()
    ]


def ten_second_clock(_quantity: str, now: float) -> float:
    """20 + seconds mod 10: inside every sensor's range, and a value dates its reading."""
    return 20.0 + now % 10.0


def assert_dated(polled) -> None:
    for s in polled:
        drift = abs((s.value - 20.0 - s.taken_at.timestamp() % 10 + 5) % 10 - 5)
        assert drift < 0.3, f"{s.sensor} {s.quantity} {s.value} taken {s.taken_at}"


def timed_cycle(poller: Poller):
    started = time.monotonic()
    polled = poller.cycle()
    return polled, time.monotonic() - started


def test_rtu_bus_reads_live_sensors_and_backs_off_a_dead_one(pty_pair) -> None:
    sensors_end, gateway_end = pty_pair
    served = [SimulatedSensor(unit, rmap, ten_second_clock) for unit, rmap in MAPS.items()]
    devices = bus_devices(gateway_end)
    dead = devices[-1]
    with FarmThread(farm_of(rtu(sensors_end), served)):
        poller = Poller(devices)
        try:
            first, first_s = timed_cycle(poller)
            failures_after_first = dead.backoff.failures
            second, second_s = timed_cycle(poller)
            served[2].silent = True  # unit 3 dies mid-run ...
            third, _ = timed_cycle(poller)
            served[2].silent = False  # ... and comes back
            time.sleep(1.0)  # its first backoff
            fourth, _ = timed_cycle(poller)
        finally:
            poller.close()

    live = [s for s in first if s.sensor != dead.device.id]
    assert len(live) == 6
    assert all(s.quality is Quality.OK and len(s.registers) in (1, 2) for s in live), live
    assert_dated(live)
    assert {(s.quality, s.value) for s in first if s.sensor == dead.device.id} == {
        (Quality.TIMEOUT, None)
    }
    assert failures_after_first == 1
    # The dead unit cost its timeout x attempts once; in backoff it costs nothing.
    assert first_s >= TIMEOUT_S * (1 + RETRIES)
    assert second_s < TIMEOUT_S * (1 + RETRIES) / 4, f"{second_s:.3f} s with the dead unit idle"
    assert {s.quality for s in second if s.sensor != dead.device.id} == {Quality.OK}
    assert [s.quality for s in third if s.sensor == "unit-3"] == [Quality.TIMEOUT] * 2
    assert {s.quality for s in third if s.sensor in ("unit-1", "unit-2")} == {Quality.OK}
    assert {s.quality for s in fourth if s.sensor == "unit-3"} == {Quality.OK}
    assert poller.errors["unit-3"] == 1 and poller.errors[dead.device.id] == 4
    assert [s.reads for s in served] == [4, 4, 3]  # one block each, 4 cycles, one unanswered


def test_gateway_publishes_an_rtu_bus_end_to_end(
    tmp_path: Path, pty_pair, mosquitto, pg_url, processes
) -> None:
    sensors_end, gateway_end = pty_pair
    gw = make_gateway_config(tmp_path, sensors=4, transport={"kind": "rtu", "port": gateway_end})
    loaded = load_gateway(gw.config)
    *alive, dead = loaded.config.devices  # the fourth is configured but not on the bus
    served = [SimulatedSensor(d.unit_id, loaded.maps[d.id], clock_curve) for d in alive]
    with FarmThread(farm_of(rtu(sensors_end), served)):
        start_ingest(processes, "ingest", ingest_args(pg_url, mosquitto))
        run = processes("gateway", *gateway_args(gw, mosquitto))
        wait_until(lambda: count_of(pg_url, gw.id) >= 80, 60, "RTU readings to arrive")
        assert run.terminate() == 0
    spans = run.taken_spans()
    assert spans, run.text()
    total = sum(last - first + 1 for first, last in spans)
    wait_until(lambda: count_of(pg_url, gw.id) == total, 30, "the buffer to drain")
    rows = readings_of(pg_url, gw.id)
    assert_exactly_once(rows, spans, per_poll=2)
    assert_taken_times(rows)
    by_sensor = {d.id: [r for r in rows if r.sensor_id == d.id] for d in loaded.config.devices}
    assert {(r.quality, r.value) for r in by_sensor[dead.id]} == {("timeout", None)}
    for device in alive:
        assert any(r.quality == "ok" for r in by_sensor[device.id]), device.id
        assert not any(r.quality == "timeout" for r in by_sensor[device.id]), device.id


# --- coldchain-gateway probe --------------------------------------------------------------


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "probe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def fixed(values: dict[str, float]):
    return lambda quantity, _now: values[quantity]


def test_probe_prints_what_a_tcp_sensor_reports() -> None:
    port = free_port()
    sensor = SimulatedSensor(7, MAPS[1], fixed({"temperature": -4.2, "humidity": 55.5}))
    with FarmThread(farm_of(TcpTransport(host="127.0.0.1", port=port), [sensor])):
        result = probe(
            "--map", str(SENSORS / "xy-md02.yaml"), "--tcp", f"127.0.0.1:{port}",
            "--unit-id", "7", "--count", "2", "--interval", "0.1",
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"XY-MD02, unit 7 on tcp://127.0.0.1:{port}" in out
    assert "read 1/2" in out and "read 2/2" in out
    lines = [line.split() for line in out.splitlines()]
    assert lines.count(["temperature", "0xFFD6", "-4.2", "C", "ok"]) == 2
    assert lines.count(["humidity", "0x022B", "55.5", "%RH", "ok"]) == 2
    assert sensor.reads == 2  # one request per read: both points are in one block


def test_probe_reads_an_rtu_sensor(pty_pair) -> None:
    sensors_end, gateway_end = pty_pair
    sensor = SimulatedSensor(2, MAPS[2], fixed({"temperature": 5.25, "humidity": 41.0}))
    with FarmThread(farm_of(rtu(sensors_end), [sensor])):
        result = probe(
            "--map", str(SENSORS / "vaisala-hmp4.yaml"), "--rtu", gateway_end,
            "--baudrate", "9600", "--parity", "N", "--stopbits", "1", "--unit-id", "2",
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    # float32, least significant word first: 5.25 is 0x40A80000
    assert ["temperature", "0x0000", "0x40A8", "5.25", "C", "ok"] in lines
    assert ["humidity", "0x0000", "0x4224", "41", "%RH", "ok"] in lines


@pytest.mark.parametrize("where", ["tcp", "rtu"])
def test_probe_of_nothing_fails_and_says_so(where: str, request: pytest.FixtureRequest) -> None:
    if where == "tcp":
        target = ["--tcp", f"127.0.0.1:{free_port()}"]
    else:
        target = ["--rtu", request.getfixturevalue("pty_pair")[1]]  # a bus with no sensor
    result = probe(
        "--map", str(SENSORS / "xy-md02.yaml"), *target,
        "--timeout", "0.2", "--count", "2", "--interval", "0",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no answer from unit 1 on" in result.stderr
    assert "in 2 read(s)" in result.stderr
    assert result.stdout.count("timeout") == 4  # both points, both reads, flagged
