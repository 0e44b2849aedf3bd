"""Cold-chain rules benchmarks: alert latency under load, a zone's year, a batch in 200 zones."""

# 1. Alert latency: readings published to Mosquitto at a steady offered load (by a process of
#    its own, as gateways are) into the ingest worker; from the moment the reading that
#    completes an excursion enters the worker to the excursion, its exposures and holds
#    committed. Baselines in the same run: the store commit of the same batches, and the same
#    load with the rules off.
# 2. A zone's excursion episodes and exposures over a year of 1-minute readings (525,600
#    rows), read from the episodes kept incrementally; baseline: scanning the raw rows.
# 3. Every exposure of one batch that went through 200 zones, with its remaining budget;
#    baseline: recomputing them from the raw readings of its custody.
#
#     .venv/bin/python bench/rules.py [--rates 30000,10000,3000] [--seconds 20] [--runs 3]

from __future__ import annotations

import argparse
import getpass
import json
import logging
import multiprocessing
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cloud.adapters.engine import make_engine, session_factory  # noqa: E402
from cloud.adapters.migrate import upgrade  # noqa: E402
from cloud.adapters.orm.quality import Excursion, Exposure  # noqa: E402
from cloud.adapters.orm.readings import Gateway, Reading, Sensor, Site, Zone  # noqa: E402
from cloud.adapters.orm.traceability import Batch, CustodyInterval, Item, Product  # noqa: E402
from cloud.domain.excursions import ExcursionDetector, Sample  # noqa: E402
from cloud.domain.exposure import Presence, ZoneSeries, batch_exposures  # noqa: E402
from cloud.domain.monitoring import PRESETS  # noqa: E402
from cloud.entrypoints.ingest import IngestWorker  # noqa: E402
from cloud.entrypoints.rules_runner import RulesReport  # noqa: E402
from cloud.entrypoints.runtime import calm_collector  # noqa: E402
from cloud.service_layer import rules  # noqa: E402
from cloud.service_layer.message_batch import MessageBatch  # noqa: E402
from cloud.service_layer.store import Store  # noqa: E402
from edge import wire  # noqa: E402

log = logging.getLogger("bench.rules")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
GTIN = "09506000134352"
FRIDGE = PRESETS["2-8C"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates", default="30000,10000,3000", help="offered readings/s, a latency run each"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="latency run length")
    parser.add_argument("--runs", type=int, default=3, help="latency runs of each rate")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not measured")
    parser.add_argument(
        "--rules-in",
        choices=("process", "thread"),
        default="process",
        help="where the ingest worker runs the rules",
    )
    parser.add_argument(
        "--linger-ms",
        type=float,
        default=20.0,
        help="how long the ingest worker gathers a batch while its writer is busy",
    )
    parser.add_argument(
        "--rules-only",
        action="store_true",
        help="skip the latency runs with the rules off (ingest alone)",
    )
    parser.add_argument("--database", default=PG_ADMIN, help="PostgreSQL admin URL")
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats of the queries")
    parser.add_argument("--only", choices=("latency", "year", "zones"), action="append")
    parser.add_argument("--tail", type=int, default=0, help="print the N slowest openings")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "rules.json")
    return parser.parse_args(argv)


@contextmanager
def private_broker() -> Iterator[tuple[str, int]]:
    """A Mosquitto of the benchmark's own, so no other traffic is measured."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "mosquitto.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\n"
            f"user {getpass.getuser()}\n"
            "max_queued_messages 0\nmax_inflight_messages 0\n"
        )
        proc = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            else:
                raise SystemExit("the benchmark's Mosquitto did not start")
            yield "127.0.0.1", port
        finally:
            proc.terminate()
            proc.wait(10)


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new migrated PostgreSQL database, dropped on exit."""
    name = f"coldchain_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = admin_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            upgrade(url)
            yield url
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    """Median milliseconds of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def plant(url: str, zones: list[str], per_gateway: int) -> None:
    """Sites, gateways, one sensor per zone, and a product with a budget."""
    engine = make_engine(url)
    with session_factory(engine)(info={"actor": "bench"}) as s:
        s.add(Site(id="site", name="site", kind="warehouse"))
        s.add(
            Product(
                gtin=GTIN,
                name="vaccine",
                low=2,
                high=8,
                freeze_sensitive=True,
                stability_budget_min=100_000,
            )
        )
        s.flush()
        for g in range(0, len(zones), per_gateway):
            s.add(Gateway(id=f"gw{g // per_gateway}", site_id="site"))
        s.flush()
        for i, zone in enumerate(zones):
            s.add(Zone(id=zone, site_id="site", name=zone, kind="cold_room", low=2, high=8))
            s.flush()
            s.add(
                Sensor(id=f"s-{zone}", zone_id=zone, gateway_id=f"gw{i // per_gateway}", model="x")
            )
        s.commit()
    engine.dispose()


def add_batch(url: str, lot: str, stays: list[tuple[str, datetime, datetime | None]]) -> int:
    """A batch of two items that stays in each zone in turn."""
    engine = make_engine(url)
    with session_factory(engine)(info={"actor": "bench"}) as s:
        batch = Batch(gtin=GTIN, lot=lot, expires_on=date(2030, 1, 1), quantity=2)
        s.add(batch)
        s.flush()
        items = [Item(gtin=GTIN, serial=f"{lot}-{n}", batch_id=batch.id) for n in (1, 2)]
        s.add_all(items)
        s.flush()
        for it in items:
            for zone, a, b in stays:
                s.add(
                    CustodyInterval(
                        item_id=it.id, zone_id=zone, started_at=a, ended_at=b, basis="observed"
                    )
                )
        s.commit()
        batch_id = batch.id
    engine.dispose()
    return batch_id


# --- 1. alert latency under load ------------------------------------------------------------

PER_GATEWAY = 10  # sensors (zones) per gateway
MINUTES_PER_ENVELOPE = 30  # each envelope: 30 one-minute readings of each of its sensors
CYCLE = 200  # a cycling zone: 30 min at 13 C every 200 min (warning at 10, alarm at 15)


def value_at(zone_index: int, minute: int) -> float:
    """5 C; a cycling zone (one a gateway) is at 13 C 30 minutes in every 200, staggered."""
    phase = (zone_index // PER_GATEWAY) * 10
    if zone_index % PER_GATEWAY == 0 and (minute + phase) % CYCLE >= CYCLE - 30:
        return 13.0
    return 5.0


def envelopes(
    gateways: int, rate: int, seconds: float, base: datetime
) -> list[tuple[str, bytes, int]]:
    """Every envelope of a run, made before it starts: (topic, payload, readings), in order.

    The gateways are other machines; encoding their JSON here would spend this machine's
    cores on what the cloud never does."""
    per_envelope = PER_GATEWAY * MINUTES_PER_ENVELOPE
    seq = [0] * gateways
    made = []
    for k in range(int(seconds * rate / per_envelope) + 1):
        rnd, g = divmod(k, gateways)
        records = []
        for m in range(rnd * MINUTES_PER_ENVELOPE, (rnd + 1) * MINUTES_PER_ENVELOPE):
            taken = base + timedelta(minutes=m)
            for j in range(PER_GATEWAY):
                zone_index = g * PER_GATEWAY + j
                seq[g] += 1
                body = wire.encode_reading_body(
                    f"s-z{zone_index}",
                    "temperature",
                    value_at(zone_index, m),
                    "C",
                    wire.Quality.OK,
                    taken,
                )
                records.append((seq[g], body))
        payload = wire.assemble_readings(f"gw{g}", "site", records)
        made.append((wire.topic("site", f"gw{g}", "readings"), payload, len(records)))
    return made


def publisher_main(
    host: str,
    port: int,
    gateways: int,
    rate: int,
    seconds: float,
    base: str,
    started: Any,
    sent: Any,
) -> None:
    """Publish envelopes at the offered rate (a process of its own, as gateways are)."""
    made = envelopes(gateways, rate, seconds, datetime.fromisoformat(base))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-rules-pub-{uuid.uuid4()}")
    client.max_inflight_messages_set(1000)
    client.connect(host, port)
    client.loop_start()
    envelopes_per_s = rate / (PER_GATEWAY * MINUTES_PER_ENVELOPE)  # spread evenly: steady
    started.set()
    began = time.monotonic()
    for k, (topic, payload, count) in enumerate(made):
        if time.monotonic() - began >= seconds:
            break
        delay = began + k / envelopes_per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        client.publish(topic, payload, qos=1)
        sent.value += count
    time.sleep(1.0)
    client.loop_stop()
    client.disconnect()


class TimedStore(Store):
    """The store, noting how long the newest message of each batch waited for its commit."""

    def __init__(self, engine: Any):
        super().__init__(engine)
        self.latencies: list[tuple[float, float]] = []  # (monotonic, ms)

    def write(self, batch: MessageBatch) -> Any:
        result = super().write(batch)
        if batch.readings:
            newest = max(r[-1] for r in batch.readings)
            ms = (datetime.now(UTC) - newest).total_seconds() * 1000
            self.latencies.append((time.monotonic(), ms))
        return result


def run_latency(args: argparse.Namespace) -> dict:
    """Each offered rate with the rules on, then with ingest alone; `--runs` times over, with
    the medians of each figure by rate and rules on or off."""
    rates = [int(r) for r in args.rates.split(",")]
    runs = []
    modes = (True,) if args.rules_only else (True, False)
    for _ in range(args.runs):
        for rate in rates:
            for with_rules in modes:
                with private_broker() as (host, port):
                    runs.append(_run_latency(args, host, port, rate, with_rules))
                    print("alert latency:", json.dumps(runs[-1]), flush=True)
    medians = []
    for rate in rates:
        for with_rules in modes:
            these = [
                r for r in runs if r["offered_rate_per_s"] == rate and r["rules"] is with_rules
            ]
            row: dict[str, Any] = {"offered_rate_per_s": rate, "rules": with_rules}
            row["runs"] = len(these)
            for key in MEDIAN_KEYS:
                values = [r[key] for r in these if r.get(key) is not None]
                row[key] = round(statistics.median(values), 1) if values else None
                if len(values) > 1:
                    row[key + "_range"] = [min(values), max(values)]
            row["kept_up_runs"] = sum(r["kept_up"] for r in these)
            medians.append(row)
            print("alert latency median:", json.dumps(row), flush=True)
    return {"runs": runs, "medians": medians}


MEDIAN_KEYS = (
    "p50_ms",
    "p99_ms",
    "baseline_store_commit_p50_ms",
    "baseline_store_commit_p99_ms",
    "ingest_per_s",
    "rules_per_s",
    "published_per_s",
    "ratio_p50_to_store",
)


def _run_latency(
    args: argparse.Namespace, host: str, port: int, rate: int, with_rules: bool
) -> dict:
    gateways = 20
    zones = [f"z{i}" for i in range(gateways * PER_GATEWAY)]
    base = (datetime.now(UTC) - timedelta(days=30)).replace(second=0, microsecond=0)
    with fresh_database(args.database) as url:
        plant(url, zones, PER_GATEWAY)
        for i, zone in enumerate(zones):
            if i % PER_GATEWAY == 0:
                add_batch(url, f"L{i}", [(zone, base - timedelta(days=1), None)])
        engine = make_engine(url, ping=False)  # as `coldchain-cloud ingest` makes it
        store = TimedStore(engine)
        worker = IngestWorker(
            store,
            host,
            int(port),
            client_id=f"bench-rules-ingest-{uuid.uuid4().hex[:8]}",
            shared=False,
            session_expiry_s=60,
            rules_process=args.rules_in == "process",
            linger_s=args.linger_ms / 1000,
        )
        rule_latencies: list[tuple[float, float]] = []
        # where the time of each opening went: (monotonic, queued, evaluating, waiting, commit)
        parts: list[tuple[float, float, float, float, float]] = []
        counts = {"excursions": 0, "holds": 0}

        def on_rules(outcome: RulesReport) -> None:
            # the commit's moment, as the rules noted it (not when their report got here)
            done = outcome.committed_at or datetime.now(UTC)
            opened = set(outcome.opened)
            for excursion_id, trigger in outcome.triggers.items():
                if excursion_id in opened:
                    ms = (done - trigger).total_seconds() * 1000
                    rule_latencies.append((time.monotonic(), ms))
                    assert outcome.began is not None
                    queued = (outcome.began - trigger).total_seconds() * 1000
                    parts.append(
                        (
                            time.monotonic(),
                            queued,
                            outcome.evaluating_ms,
                            outcome.waiting_ms,
                            outcome.committing_ms,
                            ms,
                            len(outcome.holds),
                            outcome.readings,
                        )
                    )
            counts["excursions"] += len(outcome.opened)
            counts["holds"] += len(outcome.holds)

        worker.on_rules = on_rules
        worker.rules = with_rules
        calm_collector()  # as `coldchain-cloud ingest` does before it starts the worker
        worker.start()
        if not worker.connected.wait(10):
            raise SystemExit("the ingest worker could not connect to the broker")
        time.sleep(0.5)
        context = multiprocessing.get_context("spawn")
        started = context.Event()
        sent = context.Value("q", 0)
        publisher = context.Process(
            target=publisher_main,
            args=(host, int(port), gateways, rate, args.seconds, base.isoformat(), started, sent),
        )
        publisher.start()
        started.wait(60)
        began = time.monotonic()
        publisher.join()
        offered_s = time.monotonic() - began - 1.0
        deadline = time.monotonic() + 30
        expected = sent.value
        while worker.written < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        drained_s = time.monotonic() - began
        worker.stop()  # the rules drain their queue before it returns
        rules_s = time.monotonic() - began
        engine.dispose()
    warm = began + args.warmup
    measured = [ms for at, ms in rule_latencies if at >= warm]
    stored = [ms for at, ms in store.latencies if at >= warm]
    split = [p[1:] for p in parts if p[0] >= warm]
    for p in sorted(split, key=lambda p: -p[4])[: args.tail]:  # the slowest openings
        print(
            f"tail: {p[4]:.1f} ms = queued {p[0]:.1f} + evaluating {p[1]:.1f} + waiting "
            f"{p[2]:.1f} + commit {p[3]:.1f}; {p[6]} readings, {p[5]} holds"
        )
    result = {
        "offered_rate_per_s": rate,
        "rules": with_rules,
        "rules_in": args.rules_in,
        "offered_seconds": round(offered_s, 1),
        "readings_published": sent.value,
        "published_per_s": round(sent.value / offered_s),
        "readings_written": worker.written,
        "ingest_per_s": round(worker.written / drained_s),
        "drained_seconds": round(drained_s, 1),
        "rules_evaluated": worker.evaluated,
        "rules_per_s": round(worker.evaluated / rules_s) if with_rules else None,
        "rules_drained_seconds": round(rules_s, 1),
        "kept_up": worker.written >= expected
        and drained_s < offered_s + 5
        and (not with_rules or (worker.evaluated >= expected and rules_s < offered_s + 5)),
        "excursions_opened": counts["excursions"],
        "holds_opened": counts["holds"],
        "samples": len(measured),
        "p50_ms": round(percentile(measured, 50), 1) if measured else None,
        "p99_ms": round(percentile(measured, 99), 1) if measured else None,
        "baseline_store_commit_p50_ms": round(percentile(stored, 50), 1) if stored else None,
        "baseline_store_commit_p99_ms": round(percentile(stored, 99), 1) if stored else None,
        "target_p50_ms": 20,
        "target_p99_ms": 50,
    }
    if split:  # medians of where an opening's time went, up to the rules' commit
        for n, name in enumerate(("queued", "evaluating", "waiting_for_writer", "committing")):
            result[f"{name}_p50_ms"] = round(statistics.median(p[n] for p in split), 1)
            result[f"{name}_p99_ms"] = round(percentile([p[n] for p in split], 99), 1)
    if measured and stored:
        result["ratio_p50_to_store"] = round(
            result["p50_ms"] / result["baseline_store_commit_p50_ms"], 2
        )
    return result


# --- 2. a zone's year ------------------------------------------------------------------------


def year_value(minute: int) -> float:
    day, in_day = divmod(minute, 1440)
    if day % 7 == 3 and 600 <= in_day < 690:
        return 11.0  # a weekly 90-minute failure: warning and alarm
    if day % 30 == 10 and 120 <= in_day < 123:
        return -0.5  # a monthly freeze
    if 180 <= in_day < 205:
        return 9.0  # a daily 25-minute defrost: a warning
    return 5.0 + (minute % 7) * 0.1


def run_year(args: argparse.Namespace) -> dict:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    minutes = 365 * 1440
    with fresh_database(args.database) as url:
        plant(url, ["year"], 1)
        for b in range(27):  # a new batch every two weeks
            a = start + timedelta(days=14 * b)
            add_batch(url, f"Y{b}", [("year", a, a + timedelta(days=14))])
        engine = make_engine(url)
        store = Store(engine)
        sessions = session_factory(engine)
        t = time.perf_counter()
        for day in range(365):
            rows = [
                (
                    "gw0",
                    m + 1,
                    "s-year",
                    "temperature",
                    year_value(m),
                    "C",
                    "ok",
                    start + timedelta(minutes=m),
                    start + timedelta(minutes=m),
                )
                for m in range(day * 1440, (day + 1) * 1440)
            ]
            batch = MessageBatch()
            batch.readings = rows
            store.write(batch)
            with sessions() as s:
                rules.evaluate_readings(s, rows)
                s.commit()
        build_s = time.perf_counter() - t
        end = start + timedelta(minutes=minutes)

        def ours() -> tuple[int, int]:
            with sessions() as s:
                found = rules.zone_excursions(s, "year", start, end)
                ids = [e.id for e in found]
                exposures = list(s.scalars(select(Exposure).where(Exposure.excursion_id.in_(ids))))
                return len(found), len(exposures)

        def raw_rows() -> int:
            with sessions() as s:
                return len(
                    s.execute(
                        select(Reading.taken_at, Reading.value, Reading.quality).where(
                            Reading.sensor_id == "s-year",
                            Reading.taken_at >= start,
                            Reading.taken_at < end,
                        )
                    ).all()
                )

        def raw_sql_fetch() -> int:
            with psycopg.connect(url) as conn:
                return len(
                    conn.execute(
                        "SELECT taken_at, value, quality FROM readings WHERE sensor_id = %s"
                        " AND taken_at >= %s AND taken_at < %s ORDER BY taken_at",
                        ("s-year", start, end),
                    ).fetchall()
                )

        def raw_scan() -> tuple[int, int]:
            with sessions() as s:
                rows = s.execute(
                    select(Reading.taken_at, Reading.value, Reading.quality)
                    .where(Reading.sensor_id == "s-year", Reading.taken_at >= start)
                    .where(Reading.taken_at < end)
                    .order_by(Reading.taken_at)
                ).all()
                custody = [
                    Presence(i, b, a, e)
                    for i, b, a, e in s.execute(
                        select(
                            CustodyInterval.item_id,
                            Item.batch_id,
                            CustodyInterval.started_at,
                            CustodyInterval.ended_at,
                        )
                        .join(Item, Item.id == CustodyInterval.item_id)
                        .where(CustodyInterval.zone_id == "year")
                    )
                ]
            samples = [Sample("s-year", t, v, q == "ok") for t, v, q in rows]
            episodes = ExcursionDetector(FRIDGE).feed(samples)
            closed = [e for e in episodes if e.ended_at is not None]
            series = ZoneSeries(((t, v) for t, v, _ in rows), high=True)
            exposures = sum(
                len(batch_exposures(e.started_at, e.ended_at, custody, series, e.limit, True))
                for e in closed
            )
            return len(closed), exposures

        ours_ms, ours_found = timed(ours, args.repeat)
        rows_ms, row_count = timed(raw_rows, max(1, args.repeat // 2))
        sql_ms, _ = timed(raw_sql_fetch, max(1, args.repeat // 2))
        scan_ms, scan_found = timed(raw_scan, max(1, args.repeat // 2))
        engine.dispose()
    return {
        "readings": minutes,
        "rows_scanned": row_count,
        "store_and_rules_by_day_readings_per_s": round(minutes / build_s),
        "excursions": ours_found[0],
        "exposures": ours_found[1],
        "episodes_and_exposures_ms": round(ours_ms, 1),
        "baseline_raw_fetch_ms": round(rows_ms, 1),
        "baseline_raw_sql_fetch_ms": round(sql_ms, 1),
        "baseline_raw_scan_and_detect_ms": round(scan_ms, 1),
        "raw_scan_found": {"closed_episodes": scan_found[0], "exposures": scan_found[1]},
        "ratio_to_raw_fetch": round(ours_ms / rows_ms, 3),
        "ratio_to_raw_sql_fetch": round(ours_ms / sql_ms, 3),
        "target_ms": 100,
    }


# --- 3. one batch through 200 zones ----------------------------------------------------------


def run_zones(args: argparse.Namespace) -> dict:
    zones = [f"hop{i}" for i in range(200)]
    start = datetime(2025, 3, 1, tzinfo=UTC)
    stay = timedelta(hours=6)
    with fresh_database(args.database) as url:
        plant(url, zones, 10)
        stays = [(z, start + i * stay, start + (i + 1) * stay) for i, z in enumerate(zones)]
        batch_id = add_batch(url, "HOP", stays)
        engine = make_engine(url)
        store = Store(engine)
        sessions = session_factory(engine)
        seq = 0
        for i, zone in enumerate(zones):
            zone_start = start + i * stay - timedelta(hours=1)
            rows = []
            for m in range(8 * 60):  # an hour either side of the stay
                seq += 1
                hot = 120 <= m < 190 or 300 <= m < 320  # an alarm and a warning in each zone
                rows.append(
                    (
                        f"gw{i // 10}",
                        seq,
                        f"s-{zone}",
                        "temperature",
                        11.0 if hot else 5.0,
                        "C",
                        "ok",
                        zone_start + timedelta(minutes=m),
                        zone_start + timedelta(minutes=m),
                    )
                )
            batch = MessageBatch()
            batch.readings = rows
            store.write(batch)
            with sessions() as s:
                rules.evaluate_readings(s, rows)
                s.commit()

        def ours() -> tuple[int, float | None]:
            with sessions() as s:
                found = rules.batch_exposures(s, batch_id)
                return len(found), rules.remaining_budget(s, batch_id)

        def raw() -> int:
            total = 0
            with sessions() as s:
                for zone, a, b in stays:
                    rows = s.execute(
                        select(Reading.taken_at, Reading.value, Reading.quality)
                        .where(Reading.sensor_id == f"s-{zone}")
                        .where(Reading.taken_at >= a - timedelta(hours=1), Reading.taken_at < b)
                        .order_by(Reading.taken_at)
                    ).all()
                    custody = [Presence(1, batch_id, a, b)]
                    samples = [Sample(zone, t, v, q == "ok") for t, v, q in rows]
                    series = ZoneSeries(((t, v) for t, v, _ in rows), high=True)
                    for e in ExcursionDetector(FRIDGE).feed(samples):
                        if e.ended_at is not None:
                            total += len(
                                batch_exposures(
                                    e.started_at, e.ended_at, custody, series, e.limit, True
                                )
                            )
            return total

        ours_ms, (exposures, remaining) = timed(ours, args.repeat)
        raw_ms, raw_found = timed(raw, max(1, args.repeat // 2))
        with sessions() as s:
            excursions = len(list(s.scalars(select(Excursion.id))))
        engine.dispose()
    return {
        "zones": len(zones),
        "excursions": excursions,
        "exposures": exposures,
        "remaining_budget_min": remaining,
        "batch_exposures_ms": round(ours_ms, 1),
        "baseline_raw_recompute_ms": round(raw_ms, 1),
        "raw_found": raw_found,
        "ratio_to_raw": round(ours_ms / raw_ms, 3),
        "target_ms": 500,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    parts = args.only or ["year", "zones", "latency"]
    result: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds")}
    if "year" in parts:
        result["zone_year"] = run_year(args)
        print("zone year:", json.dumps(result["zone_year"]))
    if "zones" in parts:
        result["batch_200_zones"] = run_zones(args)
        print("batch across 200 zones:", json.dumps(result["batch_200_zones"]))
    if "latency" in parts:
        result["alert_latency"] = run_latency(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
