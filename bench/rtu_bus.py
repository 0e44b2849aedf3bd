"""RTU bus benchmark: poll-cycle time of N sensors on one bus, against the wire time.

A pseudo-terminal pair joined by a relay that lets bytes through at the line's baud rate
(11 bits a character) stands in for the RS-485 cable; simulated pymodbus sensors listen on one
end, the gateway's poller uses the other. Prints a table; results go to bench/results/.

    .venv/bin/python bench/rtu_bus.py --baudrate 9600 --cycles 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.config import Device, RtuTransport, Zone, load_register_map  # noqa: E402
from edge.poller import ModbusDevice, Poller  # noqa: E402
from edge.simulator import SensorFarm, SimulatedSensor, zone_curve  # noqa: E402

MAPS = ["xy-md02.yaml", "renke-rs-ws-n01.yaml", "vaisala-hmp4.yaml", "siemens-qfa3150-mo.yaml"]


class PacedLine:
    """Two pseudo-terminals whose masters are joined at `baudrate`, one character at a time."""

    def __init__(self, baudrate: int):
        self.char_s = 11 / baudrate
        self._fds = [os.openpty(), os.openpty()]
        self.ends = [os.ttyname(slave) for _, slave in self._fds]
        self._stop = threading.Event()
        masters = [master for master, _ in self._fds]
        self._threads = [
            threading.Thread(target=self._relay, args=(a, b), daemon=True)
            for a, b in (masters, masters[::-1])
        ]
        for thread in self._threads:
            thread.start()

    def _relay(self, source: int, sink: int) -> None:
        due = time.perf_counter()
        while not self._stop.is_set():
            try:
                data = os.read(source, 256)
            except OSError:
                return
            due = max(due, time.perf_counter())
            for byte in data:
                due += self.char_s
                time.sleep(max(0.0, due - time.perf_counter()))
                os.write(sink, bytes([byte]))

    def close(self) -> None:
        self._stop.set()
        for master, slave in self._fds:
            os.close(slave)
            os.close(master)


def wire_ms(rmap, baudrate: int) -> float:
    """Request, response and two 3.5-character gaps per register block, in milliseconds."""
    chars = sum(8 + 5 + 2 * count + 7 for _, _, count in rmap.blocks())
    return chars * 11 / baudrate * 1000


def measure(line: PacedLine, sensors: int, dead: int, cycles: int, baudrate: int) -> dict:
    maps = [
        load_register_map(ROOT / "firmware-configs" / "sensors" / MAPS[i % 4])
        for i in range(sensors)
    ]
    zone = Zone(id="z", name="z", low=2.0, high=8.0)
    farm = SensorFarm()
    served = RtuTransport(kind="rtu", port=line.ends[0], baudrate=baudrate)
    for i, rmap in enumerate(maps):
        farm.add(served, SimulatedSensor(i + 1, rmap, zone_curve(zone, phase=i)))
    polled = RtuTransport(kind="rtu", port=line.ends[1], baudrate=baudrate)
    devices = []
    for unit in range(1, sensors + dead + 1):  # the units past `sensors` are not on the bus
        device = Device(
            id=f"s{unit}", zone="z", register_map="-", transport=polled, unit_id=unit, timeout_s=0.5
        )
        devices.append(ModbusDevice(device, maps[(unit - 1) % len(maps)]))
    live = {f"s{unit}" for unit in range(1, sensors + 1)}
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(farm.start(), loop).result(10)
    poller = Poller(devices)
    times, bad = [], 0
    try:
        for _ in range(cycles):
            started = time.perf_counter()
            polled = poller.cycle()
            times.append((time.perf_counter() - started) * 1000)
            bad += sum(1 for s in polled if s.sensor in live and s.quality.value != "ok")
    finally:
        poller.close()
        asyncio.run_coroutine_threadsafe(farm.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    return {
        "sensors": sensors,
        "dead": dead,
        "wire_ms": round(sum(wire_ms(m, baudrate) for m in maps), 1),
        "first_cycle_ms": round(times[0], 1),
        "median_cycle_ms": round(statistics.median(times[1:]), 1),
        "max_cycle_ms": round(max(times[1:]), 1),
        "live_readings_not_ok": bad,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baudrate", type=int, default=9600)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "rtu_bus.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    results = []
    columns = ("sensors", "dead", "wire_ms", "first_cycle_ms", "median_cycle_ms", "max_cycle_ms")
    print(f"{args.baudrate} baud, {args.cycles} cycles each; timeout 0.5 s, 1 retry")
    print("".join(f"{c:>17}" for c in (*columns, "live_not_ok")))
    for sensors, dead in ((1, 0), (4, 0), (8, 0), (20, 0), (4, 1)):
        line = PacedLine(args.baudrate)
        try:
            result = measure(line, sensors, dead, args.cycles, args.baudrate)
        finally:
            line.close()
        results.append(result)
        print("".join(f"{result[c]:>17}" for c in (*columns, "live_readings_not_ok")))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    twenty = next(r for r in results if r["sensors"] == 20 and not r["dead"])
    ratio = round(twenty["median_cycle_ms"] / twenty["wire_ms"], 3)
    print(
        f"20 sensors: {twenty['median_cycle_ms']} ms a cycle, {ratio} x the wire time "
        f"(target: at most 1.2)"
    )
    summary = {
        "baudrate": args.baudrate,
        "twenty_sensors_ratio_to_wire": ratio,
        "target_ratio": 1.2,
        "results": results,
    }
    args.output.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
