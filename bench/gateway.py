"""Gateway benchmarks, each against a raw baseline run in the same process.

1. Poll overhead: polls/s of the gateway's Poller over 50 local pymodbus TCP devices versus a
   bare pymodbus client loop over the same devices (target: at least 0.8 of the bare loop).
2. Backlog drain: readings/s from buffer to PUBACK through the Publisher versus a bare paho
   QoS 1 publisher of the same envelopes with the same window (target: at least 0.8). Run
   warm (the backlog of an outage, the gateway still running: recent chunks in memory) and
   cold (after a restart: every chunk read from the file); acknowledged-and-deleted rates too.
3. Buffer writes with synchronous=FULL, one transaction per poll cycle, versus a bare SQLite
   executemany into the same table with the same settings (target: 50,000/s and 0.5).
4. Resident memory of a gateway process with 50 sensors and 2 RFID readers (target: 60 MB).

    .venv/bin/python bench/gateway.py            # writes bench/results/gateway.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud.adapters.broker import free_port  # noqa: E402
from edge import wire  # noqa: E402
from edge.buffer import Buffer  # noqa: E402
from edge.config import Device, MqttSettings, TcpTransport, load_register_map  # noqa: E402
from edge.poller import ModbusDevice, Poller  # noqa: E402
from edge.publisher import Publisher  # noqa: E402

log = logging.getLogger("bench.gateway")
SENSORS = ROOT / "firmware-configs" / "sensors"
XY = load_register_map(SENSORS / "xy-md02.yaml")


FARM_SCRIPT = """
import asyncio, sys
from edge.config import TcpTransport, load_register_map
from edge.simulator import SensorFarm, SimulatedSensor, serve_forever
rmap = load_register_map(sys.argv[1])
farm = SensorFarm()
for port in map(int, sys.argv[2:]):
    farm.add(TcpTransport(host="127.0.0.1", port=port),
             SimulatedSensor(1, rmap, lambda q, _t: 5.0 if q == "temperature" else 45.0))
asyncio.run(serve_forever(farm))
"""


class Farm:
    """`count` simulated TCP sensors, one per port, in a process of their own.

    Devices are other machines in the field; serving them from the measuring process would
    make them compete with the poller for its interpreter lock.
    """

    def __init__(self, count: int):
        ports: set[int] = set()
        while len(ports) < count:  # the kernel may hand the same free port out twice
            ports.add(free_port())
        self.ports = sorted(ports)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    def __enter__(self) -> Farm:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                FARM_SCRIPT,
                str(SENSORS / "xy-md02.yaml"),
                *map(str, self.ports),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + 60
        for port in self.ports:
            while not _listening(port):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    self._log.seek(0)
                    tail = self._log.read().decode(errors="replace")[-800:]
                    raise RuntimeError(f"simulated sensors did not start: {tail}")
                time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(10)
        self._log.close()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def bench_poll(devices: int, seconds: float) -> dict:
    """Poller cycles versus a bare sequential pymodbus loop over the same devices."""
    from pymodbus.client import ModbusTcpClient

    with Farm(devices) as farm:
        configs = [
            Device(
                id=f"s{i}",
                zone="z",
                register_map="x",
                transport=TcpTransport(host="127.0.0.1", port=port),
                timeout_s=2,
            )
            for i, port in enumerate(farm.ports)
        ]
        poller = Poller([ModbusDevice(d, XY) for d in configs])
        poller.cycle()  # connect
        polls, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            samples = poller.cycle()
            polls += devices
        gateway_rate = polls / (time.perf_counter() - started)
        bad = [s for s in samples if s.quality is not wire.Quality.OK]
        poller.close()

        clients = [ModbusTcpClient("127.0.0.1", port=p, timeout=2) for p in farm.ports]
        for client in clients:
            client.connect()
        polls, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for client in clients:
                registers = client.read_input_registers(1, count=2, device_id=1).registers
                polls += 1
        bare_rate = polls / (time.perf_counter() - started)
        for client in clients:
            client.close()
    assert registers and not bad, "the benchmark polled nothing real"
    return {
        "devices": devices,
        "gateway_polls_per_s": round(gateway_rate, 1),
        "bare_polls_per_s": round(bare_rate, 1),
        "ratio": round(gateway_rate / bare_rate, 3),
        "target_ratio": 0.8,
    }


def backlog(directory: Path, count: int, per_cycle: int = 100, cold: bool = False) -> Buffer:
    """`count` readings buffered as a gateway buffers them: one commit per poll cycle.

    Cold: the buffer reopened afterwards, as after a restart, so nothing is in memory.
    """
    path = directory / f"backlog-{uuid.uuid4().hex[:6]}.sqlite"
    buffer = Buffer(path, max_records=10**8)
    now = datetime.now(UTC)
    bodies = [
        wire.encode_reading_body(
            f"s{i % 50}", "temperature", 4.0 + (i % 40) / 10, "C", wire.Quality.OK, now
        )
        for i in range(count)
    ]
    for start in range(0, count, per_cycle):
        buffer.append("reading", bodies[start : start + per_cycle])
    if cold:
        buffer.close()
        buffer = Buffer(path, max_records=10**8)
    return buffer


def bench_drain(
    host: str,
    port: int,
    count: int,
    per_message: int,
    window: int,
    bare_first: bool = False,
    cold: bool = False,
) -> dict:
    """Publisher draining a backlog versus bare paho publishing the same envelopes.

    The two sides run back to back on the same backlog, in the order given, so that load
    from elsewhere on the machine hits both alike; alternate the order between runs.
    """
    tag = uuid.uuid4().hex[:6]
    gateway, site = f"bench-{tag}", f"bench-site-{tag}"
    with tempfile.TemporaryDirectory() as tmp:
        buffer = backlog(Path(tmp), count, cold=cold)
        records = buffer.pending("reading", 0, count)
        envelopes = [
            wire.assemble_readings(gateway, site, records[i : i + per_message])
            for i in range(0, count, per_message)
        ]
        del records
        topic = f"cc/v1/{site}/{gateway}/readings"
        if bare_first:
            bare_s, bare_cpu = _bare_drain(host, port, topic, envelopes, window)
        gateway_s, gateway_cpu, deleted_s = _gateway_drain(
            host, port, buffer, gateway, site, per_message, window
        )
        if not bare_first:
            bare_s, bare_cpu = _bare_drain(host, port, topic, envelopes, window)
        buffer.close()
    return {
        "readings": count,
        "backlog": "cold" if cold else "warm",
        "records_per_message": per_message,
        "window": window,
        "first": "bare" if bare_first else "gateway",
        "gateway_per_s": round(count / gateway_s),
        "bare_paho_per_s": round(count / bare_s),
        "gateway_acked_and_deleted_per_s": round(count / deleted_s),
        "ratio": round(bare_s / gateway_s, 3),
        "target_ratio": 0.8,
        "acked_and_deleted_ratio": round(bare_s / deleted_s, 3),
        # CPU seconds of this process per side: less at the mercy of other load than time.
        "gateway_cpu_ms": round(gateway_cpu * 1000, 1),
        "bare_paho_cpu_ms": round(bare_cpu * 1000, 1),
    }


def _gateway_drain(
    host: str, port: int, buffer: Buffer, gateway: str, site: str, per_message: int, window: int
) -> tuple[float, float, float]:
    """Seconds and CPU seconds to take every buffered record to a PUBACK; seconds to delete."""
    count = buffer.depth
    settings = MqttSettings(records_per_message=per_message, inflight_window=window, protocol="5")
    status = lambda: wire.encode(  # noqa: E731
        wire.StatusMessage(v=1, gateway=gateway, site=site, state="online")
    )
    publisher = Publisher(buffer, settings, gateway, site, status)
    started, cpu = time.perf_counter(), time.process_time()
    publisher.start(host, port)
    if not publisher.wait_acknowledged(count, 120):  # from buffer to PUBACK
        raise RuntimeError(f"drain stuck at {publisher.acknowledged_records} of {count}")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    while buffer.depth:  # and deleted, before the buffer closes
        time.sleep(0.001)
    deleted = time.perf_counter() - started
    publisher.stop(drain_timeout_s=0)
    return elapsed, cpu, deleted


def _bare_drain(
    host: str, port: int, topic: str, envelopes: list[bytes], window: int
) -> tuple[float, float]:
    """Seconds and CPU seconds for bare paho to publish envelopes in memory at QoS 1."""
    done = threading.Event()
    acked = [0]
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bare-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)

    def on_publish(*_: object) -> None:
        acked[0] += 1
        if acked[0] == len(envelopes):
            done.set()

    client.on_publish = on_publish
    started, cpu = time.perf_counter(), time.process_time()
    client.connect(host, port)
    client.loop_start()
    for envelope in envelopes:
        client.publish(topic, envelope, qos=1)
    if not done.wait(120):
        raise RuntimeError(f"bare paho stuck at {acked[0]} of {len(envelopes)} PUBACKs")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    client.loop_stop()
    client.disconnect()
    return elapsed, cpu


def bench_buffer(cycles: int, per_cycle: int) -> dict:
    """Buffer.append per poll cycle versus bare executemany, both synchronous=FULL."""
    now = datetime.now(UTC)
    bodies = [
        wire.encode_reading_body(f"s{i}", "temperature", 4.2, "C", wire.Quality.OK, now)
        for i in range(per_cycle)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        buffer = Buffer(Path(tmp) / "gateway.sqlite", max_records=10**8)
        started = time.perf_counter()
        for _ in range(cycles):
            buffer.append("reading", bodies)
        gateway_s = time.perf_counter() - started
        wal = Path(tmp) / "gateway.sqlite-wal"
        size_before = wal.stat().st_size if wal.exists() else 0
        buffer.close()

        bare = sqlite3.connect(Path(tmp) / "bare.sqlite", isolation_level=None)
        bare.execute("PRAGMA journal_mode=WAL")
        bare.execute("PRAGMA synchronous=FULL")
        bare.execute(
            "CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT "
            "NOT NULL, body TEXT NOT NULL, created REAL NOT NULL)"
        )
        bare.execute("CREATE INDEX records_kind_seq ON records (kind, seq)")
        started = time.perf_counter()
        for _ in range(cycles):
            bare.execute("BEGIN")
            bare.executemany(
                "INSERT INTO records (kind, body, created) VALUES (?, ?, ?)",
                (("reading", b, time.time()) for b in bodies),
            )
            bare.execute("COMMIT")
        bare_s = time.perf_counter() - started
        bare.close()
    readings = cycles * per_cycle
    return {
        "cycles": cycles,
        "readings_per_cycle": per_cycle,
        "gateway_per_s": round(readings / gateway_s),
        "bare_per_s": round(readings / bare_s),
        "ratio": round(bare_s / gateway_s, 3),
        "target_per_s": 50_000,
        "target_ratio": 0.5,
        "wal_bytes_after_run": size_before,
    }


def write_volume(per_cycle: int, cycles: int, poll_interval_s: float) -> dict:
    """Bytes written to the SD card per day at a nominal load, from the kernel's own count."""
    now = datetime.now(UTC)
    bodies = [
        wire.encode_reading_body(f"wh-s{i:02d}", "temperature", 4.2, "C", wire.Quality.OK, now)
        for i in range(per_cycle)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        buffer = Buffer(Path(tmp) / "gateway.sqlite", max_records=10**8)
        before = _written_bytes()
        for i in range(cycles):
            first, last = buffer.append("reading", bodies)  # type: ignore[misc]
            if i % 3 == 2:  # acknowledgements settle in batches, as the publisher does
                buffer.acknowledge([("reading", first - 2 * per_cycle, last)])
        written = _written_bytes() - before
        buffer.close()
    per_day_cycles = 86_400 / poll_interval_s
    return {
        "readings_per_cycle": per_cycle,
        "poll_interval_s": poll_interval_s,
        "bytes_per_cycle": round(written / cycles),
        "mb_per_day": round(written / cycles * per_day_cycles / 1e6, 1),
    }


def _written_bytes() -> int:
    for line in Path(f"/proc/{os.getpid()}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def bench_memory(host: str, port: int, sensors: int, seconds: float) -> dict:
    """VmRSS of a real gateway process polling `sensors` devices with two RFID readers."""
    with Farm(sensors) as farm, tempfile.TemporaryDirectory() as tmp:
        epcs = ["3034257BF7194E4000001A85", "3114257BF4499602D2000000"]
        body = {
            "id": f"mem-{uuid.uuid4().hex[:6]}",
            "site": {"id": "mem-site", "name": "Memory", "kind": "warehouse"},
            "poll_interval_s": 1,
            "mqtt": {"host": host, "port": port},
            "zones": [{"id": "mem-z", "name": "Zone", "low": 2, "high": 8}],
            "devices": [
                {
                    "id": f"mem-s{i}",
                    "zone": "mem-z",
                    "register_map": str(SENSORS / "xy-md02.yaml"),
                    "transport": {"kind": "tcp", "host": "127.0.0.1", "port": p},
                }
                for i, p in enumerate(farm.ports)
            ],
            "readers": [
                {
                    "id": f"mem-r{i}",
                    "transport": {"kind": "simulated", "epcs": epcs, "every_s": 2},
                    "read_points": [
                        {"id": f"mem-rp{i}", "zone": "mem-z", "business_step": "receiving"}
                    ],
                }
                for i in range(2)
            ],
        }
        path = Path(tmp) / "gateway.yaml"
        path.write_text(yaml.safe_dump(body))
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "run", str(path), "--data-dir", tmp],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        samples = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(1)
            status = Path(f"/proc/{proc.pid}/status").read_text()
            samples.append(
                int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1]) / 1024
            )
        proc.terminate()
        proc.wait(30)
    return {
        "sensors": sensors,
        "readers": 2,
        "rss_mb_max": round(max(samples), 1),
        "rss_mb_last": round(samples[-1], 1),
        "target_mb": 60,
    }


PARTS = ("poll", "drain", "writes", "volume", "memory")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="127.0.0.1:1883")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "gateway.json")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=100_000, help="readings to drain")
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="Run only this part (repeatable); the other figures in --output are kept.",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    host, port = args.broker.split(":")[0], int(args.broker.split(":")[1])
    parts = args.only or PARTS

    def median_of(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def median_run(runs: list[dict]) -> dict:
        """The run with the median ratio, medians of the rates, and every run."""
        middle = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
        rates = [
            k for k in runs[0] if k.endswith(("_per_s", "_cpu_ms")) and not k.startswith("target")
        ]
        return {**middle, **{k: median_of(runs, k) for k in rates}, "runs": runs}

    result: dict = {"benchmark": "gateway"}
    if args.only and args.output.exists():
        result = json.loads(args.output.read_text())
    if "poll" in parts:
        result["poll"] = median_run([bench_poll(50, 5) for _ in range(args.repeat)])
    if "drain" in parts:
        # Alternate which side goes first, so a burst of load elsewhere favours neither.
        for name, cold in (("drain", False), ("drain_cold", True)):
            result[name] = median_run(
                [
                    bench_drain(host, port, args.backlog, 250, 16, i % 2 == 1, cold)
                    for i in range(args.repeat)
                ]
            )
    if "writes" in parts:
        result["buffer_writes"] = median_run([bench_buffer(2000, 100) for _ in range(args.repeat)])
    if "volume" in parts:
        result["write_volume"] = write_volume(per_cycle=100, cycles=300, poll_interval_s=5)
    if "memory" in parts:
        result["memory"] = bench_memory(host, port, 50, 20)
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")

    rows = [
        ("poll, 50 TCP devices (polls/s)", "poll", "gateway_polls_per_s", "bare_polls_per_s"),
        ("backlog drain (readings/s)", "drain", "gateway_per_s", "bare_paho_per_s"),
        ("  after a restart (readings/s)", "drain_cold", "gateway_per_s", "bare_paho_per_s"),
        ("buffer writes (readings/s)", "buffer_writes", "gateway_per_s", "bare_per_s"),
    ]
    print(f"{'':34}{'gateway':>12}{'baseline':>12}{'ratio':>8}")
    for name, key, ours, base in rows:
        if key in result:
            part = result[key]
            print(f"{name:34}{part[ours]:>12,.0f}{part[base]:>12,.0f}{part['ratio']:>8.2f}")
    if "write_volume" in result:
        volume = result["write_volume"]
        print(
            f"write volume at 100 readings / 5 s: {volume['mb_per_day']} MB/day "
            f"({volume['bytes_per_cycle']} bytes a cycle)"
        )
    if "memory" in result:
        print(f"gateway RSS, 50 sensors + 2 readers: {result['memory']['rss_mb_max']} MB (max)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
