"""The poller without I/O: backoff, buses, stale probes, calibration, against a fake bus."""

from __future__ import annotations

import struct
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from edge.bus import ReadFailed
from edge.config import Device, load_register_map
from edge.poller import Backoff, Clock, FreezeWatch, ModbusDevice, Poller
from edge.registers import RegisterKind
from edge.wire import Quality
from tests.conftest import SENSORS

XY = load_register_map(SENSORS / "xy-md02.yaml")  # input 1: temperature x0.1, 2: humidity x0.1
HMP = load_register_map(SENSORS / "vaisala-hmp4.yaml")  # float32, low word first


class FakeClock:
    """Monotonic seconds that tests move by hand; wall time follows from a fixed start."""

    def __init__(self, start: datetime = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)):
        self.t = 0.0
        self.start = start

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def clock(self) -> Clock:
        return Clock(wall=lambda: self.start + timedelta(seconds=self.t), monotonic=lambda: self.t)


class FakeBus:
    """Registers per unit id; a unit that is not there never answers."""

    def __init__(self, units: dict[int, dict[tuple[str, int], int]] | None = None):
        self.units = units or {}
        self.requests: list[tuple[int, str, int, int]] = []
        self.exception_units: set[int] = set()
        self.closed = False

    def read(
        self,
        unit_id: int,
        table: RegisterKind,
        first: int,
        count: int,
        *,
        timeout_s: float,
        retries: int,
    ) -> list[int]:
        self.requests.append((unit_id, table, first, count))
        if unit_id in self.exception_units:
            raise ReadFailed(Quality.MODBUS_EXCEPTION, "exception 2")
        if unit_id not in self.units:
            raise ReadFailed(Quality.TIMEOUT, f"no answer after {1 + retries} x {timeout_s}")
        return [self.units[unit_id][(table, first + i)] for i in range(count)]

    def close(self) -> None:
        self.closed = True


def xy_words(temperature: float, humidity: float) -> dict[tuple[str, int], int]:
    return {
        ("input", 1): round(temperature * 10) & 0xFFFF,
        ("input", 2): round(humidity * 10),
    }


def device(unit_id: int = 1, **fields: object) -> Device:
    transport = fields.pop("transport", {"kind": "rtu", "port": "/dev/ttyFAKE0"})
    return Device.model_validate(
        {
            "id": f"s{unit_id}",
            "zone": "cold",
            "register_map": "xy-md02.yaml",
            "transport": transport,
            "unit_id": unit_id,
            **fields,
        }
    )


def by_quantity(polled) -> dict[str, tuple[float | None, Quality]]:
    return {s.quantity: (s.value, s.quality) for s in polled}


# --- backoff ------------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_and_resets_on_an_answer() -> None:
    backoff = Backoff(max_s=60)
    assert [backoff.failed(0.0) for _ in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    backoff.answered()
    assert backoff.due(0.0) and backoff.failed(0.0) == 1


def test_backoff_survives_months_of_failures() -> None:
    backoff = Backoff(max_s=60)
    for _ in range(200_000):  # a poll every 5 s for a week and a half
        delay = backoff.failed(0.0)
    assert delay == 60


def test_a_dead_device_is_polled_less_often_then_returns_to_its_cadence() -> None:
    fake = FakeClock()
    bus = FakeBus()
    sensor = ModbusDevice(device(1, backoff_max_s=8), XY, fake.clock())
    attempts: list[float] = []
    for _ in range(40):  # a poll every 0.5 s for 20 s
        before = len(bus.requests)
        polled = sensor.poll(bus)
        if len(bus.requests) > before:
            attempts.append(fake.t)
        assert all(s.quality is Quality.TIMEOUT and s.value is None for s in polled)
        assert all(s.registers == () for s in polled)
        fake.advance(0.5)
    # tried at 0, then 1, 2, 4 and 8 s apart, then every 8 s (the cap)
    assert attempts == [0.0, 1.0, 3.0, 7.0, 15.0]
    assert sensor.backoff.failures == 5

    bus.units[1] = xy_words(4.5, 50.0)  # it answers again, but is not asked before 23 s
    while sensor.poll(bus)[0].quality is not Quality.OK:
        fake.advance(0.5)
    assert fake.t == 23.0
    answered = len(bus.requests)
    for _ in range(4):
        fake.advance(0.5)
        assert by_quantity(sensor.poll(bus))["temperature"] == (4.5, Quality.OK)
    assert len(bus.requests) == answered + 4  # back to every poll
    assert sensor.backoff.failures == 0


def test_a_modbus_exception_is_an_answer_not_a_reason_to_back_off() -> None:
    fake = FakeClock()
    bus = FakeBus({1: xy_words(4.0, 40.0)})
    bus.exception_units.add(1)
    sensor = ModbusDevice(device(1), XY, fake.clock())
    for _ in range(3):
        assert {s.quality for s in sensor.poll(bus)} == {Quality.MODBUS_EXCEPTION}
        fake.advance(0.1)
    assert len(bus.requests) == 3


# --- buses --------------------------------------------------------------------------------


def test_a_cycle_returns_every_device_in_config_order_and_counts_errors() -> None:
    fake = FakeClock()
    bus = FakeBus({1: xy_words(3.0, 45.0), 3: xy_words(5.0, 55.0)})
    devices = [ModbusDevice(device(unit), XY, fake.clock()) for unit in (3, 2, 1)]
    poller = Poller(devices, open_bus=lambda transport: bus)
    polled = poller.cycle()
    assert [(s.sensor, s.quantity) for s in polled] == [
        (sensor, quantity)
        for sensor in ("s3", "s2", "s1")
        for quantity in ("temperature", "humidity")
    ]
    assert by_quantity(polled[:2]) == {
        "temperature": (5.0, Quality.OK),
        "humidity": (55.0, Quality.OK),
    }
    assert [s.quality for s in polled[2:4]] == [Quality.TIMEOUT] * 2
    fake.advance(0.5)
    poller.cycle()  # s2 is backing off: flagged again, not asked
    assert [r[0] for r in bus.requests] == [3, 2, 1, 3, 1]
    assert poller.errors == {"s2": 2}
    poller.close()
    assert bus.closed


def test_buses_are_polled_in_parallel_and_each_bus_one_request_at_a_time() -> None:
    both_buses = threading.Barrier(2, timeout=5)  # breaks unless the two buses overlap
    in_flight: dict[str, int] = {}
    most: dict[str, int] = {}
    lock = threading.Lock()

    class SlowBus(FakeBus):
        def __init__(self, name: str):
            super().__init__({unit: xy_words(4.0, 40.0) for unit in (1, 2, 3)})
            self.name = name

        def read(self, unit_id, table, first, count, *, timeout_s, retries):
            with lock:
                in_flight[self.name] = in_flight.get(self.name, 0) + 1
                most[self.name] = max(most.get(self.name, 0), in_flight[self.name])
            if unit_id == 1:
                both_buses.wait()
            time.sleep(0.01)
            with lock:
                in_flight[self.name] -= 1
            return super().read(unit_id, table, first, count, timeout_s=timeout_s, retries=retries)

    opened: dict[str, SlowBus] = {}

    def open_bus(transport):
        return opened.setdefault(transport.bus, SlowBus(transport.bus))

    devices = [
        ModbusDevice(device(unit, transport={"kind": "rtu", "port": port}), XY)
        for port in ("/dev/ttyUSB0", "/dev/ttyUSB1")
        for unit in (1, 2, 3)
    ]
    poller = Poller(devices, open_bus=open_bus)
    try:
        polled = poller.cycle()
    finally:
        poller.close()
    assert len(opened) == 2
    assert {s.quality for s in polled} == {Quality.OK}
    assert most == {"rtu:///dev/ttyUSB0": 1, "rtu:///dev/ttyUSB1": 1}


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        (
            {"transport": {"kind": "rtu", "port": "/dev/ttyUSB0", "baudrate": 19200}},
            "share rtu:///dev/ttyUSB0 with different settings: "
            "rtu:///dev/ttyUSB0 (9600 8N1) vs rtu:///dev/ttyUSB0 (19200 8N1)",
        ),
        (
            {"transport": {"kind": "rtu", "port": "/dev/ttyUSB0"}, "id": "other", "unit_id": 1},
            "devices s1 and other both use unit id 1 on rtu:///dev/ttyUSB0",
        ),
    ],
    ids=["line-settings", "unit-id"],
)
def test_devices_on_one_bus_must_agree(second: dict, problem: str) -> None:
    first = device(1, transport={"kind": "rtu", "port": "/dev/ttyUSB0"})
    other = device(second.pop("unit_id", 2), **second)
    with pytest.raises(ValueError, match="share|both use") as caught:
        Poller([ModbusDevice(first, XY), ModbusDevice(other, XY)], open_bus=lambda t: FakeBus())
    assert problem in str(caught.value)


# --- stale --------------------------------------------------------------------------------


def test_registers_frozen_for_longer_than_stale_after_are_flagged_stale() -> None:
    fake = FakeClock()
    bus = FakeBus({1: xy_words(4.0, 40.0)})
    sensor = ModbusDevice(device(1, stale_after_s=60), XY, fake.clock())
    qualities = []
    for step in (0, 30, 30, 0.5, 10):  # unchanged for 0, 30, 60, 60.5, 70.5 s
        fake.advance(step)
        qualities.append({s.quality for s in sensor.poll(bus)})
    assert qualities == [{Quality.OK}] * 3 + [{Quality.STALE}] * 2
    assert by_quantity(sensor.poll(bus))["temperature"] == (4.0, Quality.STALE)  # value kept

    bus.units[1] = xy_words(4.0, 40.1)  # any register moving means the probe is alive
    fake.advance(5)
    assert {s.quality for s in sensor.poll(bus)} == {Quality.OK}


def test_stale_detection_is_off_by_default() -> None:
    watch = FreezeWatch(after_s=None)
    assert not any(watch.frozen((1, 2), float(t)) for t in range(0, 100_000, 1000))


def test_a_failed_poll_does_not_make_a_frozen_probe_look_alive() -> None:
    fake = FakeClock()
    bus = FakeBus({1: xy_words(4.0, 40.0)})
    sensor = ModbusDevice(device(1, stale_after_s=10), XY, fake.clock())
    sensor.poll(bus)
    words = bus.units.pop(1)
    fake.advance(6)
    assert {s.quality for s in sensor.poll(bus)} == {Quality.TIMEOUT}
    bus.units[1] = words
    fake.advance(6)
    assert {s.quality for s in sensor.poll(bus)} == {Quality.STALE}


# --- calibration --------------------------------------------------------------------------


def test_calibration_offsets_are_added_to_the_engineering_value() -> None:
    calibration = {"offsets": {"temperature": -0.3, "humidity": 1.5}, "due": "2027-01-31"}
    sensor = ModbusDevice(device(1, calibration=calibration), XY, FakeClock().clock())
    polled = sensor.poll(FakeBus({1: xy_words(4.5, 50.0)}))
    assert by_quantity(polled) == {
        "temperature": (4.2, Quality.OK),
        "humidity": (51.5, Quality.OK),
    }
    assert polled[0].registers == (45,)


def test_readings_after_the_due_date_are_flagged_calibration_overdue() -> None:
    fake = FakeClock(start=datetime(2027, 1, 31, 23, 59, 0, tzinfo=UTC))
    bus = FakeBus({1: xy_words(4.5, 50.0)})
    calibration = {"offsets": {"temperature": 0.2}, "due": date(2027, 1, 31)}
    sensor = ModbusDevice(device(1, calibration=calibration), XY, fake.clock())
    assert by_quantity(sensor.poll(bus))["temperature"] == (4.7, Quality.OK)  # on the due date
    fake.advance(60)  # 00:00 UTC on 1 February
    assert by_quantity(sensor.poll(bus)) == {
        "temperature": (4.7, Quality.CALIBRATION_OVERDUE),
        "humidity": (50.0, Quality.CALIBRATION_OVERDUE),
    }


def test_out_of_range_outranks_stale_and_calibration() -> None:
    fake = FakeClock(start=datetime(2030, 1, 1, tzinfo=UTC))
    calibration = {"offsets": {"temperature": 0.5}, "due": "2029-01-01"}
    sensor = ModbusDevice(device(1, calibration=calibration, stale_after_s=1), XY, fake.clock())
    bus = FakeBus({1: {("input", 1): 900, ("input", 2): 400}})  # 90.0 C, above valid_max
    for _ in range(3):
        fake.advance(1)
        values = by_quantity(sensor.poll(bus))
    assert values["temperature"][1] is Quality.OUT_OF_RANGE
    assert values["humidity"][1] is Quality.STALE


@pytest.mark.parametrize("raw", [0x7FFF, 0x8000])
def test_a_sentinel_is_a_sensor_fault_with_no_value(raw: int) -> None:
    # the probe's "broken" values outrank everything: no 3276.7 C, flagged or not
    fake = FakeClock(start=datetime(2030, 1, 1, tzinfo=UTC))
    calibration = {"offsets": {"temperature": 0.5}, "due": "2029-01-01"}
    sensor = ModbusDevice(device(1, calibration=calibration, stale_after_s=1), XY, fake.clock())
    bus = FakeBus({1: {("input", 1): raw, ("input", 2): 400}})
    for _ in range(3):
        fake.advance(1)
        values = by_quantity(sensor.poll(bus))
    assert values["temperature"] == (None, Quality.SENSOR_FAULT)


def test_a_calibration_for_a_quantity_the_sensor_lacks_is_refused() -> None:
    calibration = {"offsets": {"pressure": 1.0}, "due": "2027-01-31"}
    with pytest.raises(ValueError, match=r"s1: calibration offsets for \['pressure'\]"):
        ModbusDevice(device(1, calibration=calibration), XY)


def test_a_float_probe_reporting_nan_is_a_sensor_fault_without_a_value() -> None:
    nan = struct.unpack(">HH", struct.pack(">f", float("nan")))
    words = {("holding", 0): nan[1], ("holding", 1): nan[0], ("holding", 2): 0, ("holding", 3): 0}
    sensor = ModbusDevice(device(1), HMP, FakeClock().clock())
    values = by_quantity(sensor.poll(FakeBus({1: words})))
    assert values["humidity"] == (None, Quality.SENSOR_FAULT)
    assert values["temperature"] == (0.0, Quality.OK)
