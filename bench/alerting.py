"""Alerting benchmark on PostgreSQL: the release gate for a load of 200 batches, and the
excursion investigation report over a month of one-minute readings.

Baselines measured in the same run: for the gate, the one status-and-expiry query the load
step ran before (what the full gate adds); for the report, the same PDF with every reading
drawn (what thinning the chart saves). JSON in bench/results/alerting.json.

    .venv/bin/python bench/alerting.py
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from cloud.adapters.engine import make_engine, session_factory  # noqa: E402
from cloud.adapters.migrate import upgrade  # noqa: E402
from cloud.adapters.orm.traceability import Batch  # noqa: E402
from cloud.service_layer import reports  # noqa: E402
from cloud.service_layer.release_gate import gate_reasons  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
GTIN = "09506000134352"


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def seed(url: str, batches: int, minutes: int) -> int:
    """Sites, a cold room with a sensor, batches, an open excursion, a month of readings."""
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute("INSERT INTO sites VALUES ('wh-a','A','warehouse','UTC')")
        conn.execute("INSERT INTO sites VALUES ('wh-b','B','warehouse','UTC')")
        conn.execute("INSERT INTO zones VALUES ('a-cold','wh-a','Cold','cold_room',2,8)")
        conn.execute("INSERT INTO gateways (id, site_id, state) VALUES ('gw','wh-a','online')")
        conn.execute("INSERT INTO sensors VALUES ('t1','a-cold','gw','sim')")
        conn.execute(
            "INSERT INTO products (gtin, name, low, high, freeze_sensitive) "
            "VALUES (%s,'Vaccine',2,8,true)",
            (GTIN,),
        )
        conn.execute("INSERT INTO site_approvals VALUES ('wh-b','2-8C', now())")
        with conn.cursor().copy(
            "COPY batches (gtin, lot, expires_on, quantity, status) FROM STDIN"
        ) as copy:
            for n in range(batches):
                copy.write_row((GTIN, f"L{n}", date(2027, 1, 1), 100, "available"))
        excursion = conn.execute(
            "INSERT INTO excursions (zone_id, profile_id, rule, kind, level, started_at, "
            "ended_at, peak, \"limit\", state, detected_at) VALUES ('a-cold','2-8C','alarm high',"
            "'high','alarm',%s,%s,12.5,8,'open',%s) RETURNING id",
            (T0 + timedelta(days=10), T0 + timedelta(days=20), T0 + timedelta(days=10)),
        ).fetchone()[0]
        with conn.cursor().copy(
            "COPY readings (gateway_id, seq, sensor_id, quantity, value, unit, quality, "
            "taken_at, received_at) FROM STDIN"
        ) as copy:
            for n in range(minutes):
                at = T0 + timedelta(days=9, minutes=n)
                value = 12.0 if 24 * 60 <= n < 11 * 24 * 60 else 5.0
                copy.write_row(("gw", n, "t1", "temperature", value, "C", "ok", at, at))
    return int(excursion)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    name = f"coldchain_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        minutes = 12 * 24 * 60  # the excursion's 10 days and a day either side
        excursion_id = seed(url, args.batches, minutes)
        engine = make_engine(url)
        with session_factory(engine)() as db:
            ids = list(db.scalars(select(Batch.id)))

            def old_gate() -> object:
                query = select(Batch).where(Batch.id.in_(ids))
                return [b for b in db.scalars(query) if b.status != "available"]

            def full_gate() -> object:
                return gate_reasons(db, ids, "a-cold", "wh-b", at=T0)

            reasons = gate_reasons(db, ids, "a-cold", "wh-b", at=T0)
            assert [r.code for r in reasons] == ["open_excursion"], reasons
            gate_ms, baseline_gate_ms = (
                median_ms(full_gate, args.repeat),
                median_ms(old_gate, args.repeat),
            )

            report_ms = median_ms(
                lambda: reports.excursion_report(db, excursion_id, now=T0), max(3, args.repeat // 3)
            )
            size = len(reports.excursion_report(db, excursion_id, now=T0))
            keep = reports.MAX_BUCKETS
            reports.MAX_BUCKETS = 10**9  # draw every reading: the baseline
            try:
                raw_ms = median_ms(
                    lambda: reports.excursion_report(db, excursion_id, now=T0),
                    max(3, args.repeat // 3),
                )
                raw_size = len(reports.excursion_report(db, excursion_id, now=T0))
            finally:
                reports.MAX_BUCKETS = keep
        engine.dispose()
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    figures = {
        "gate_batches": args.batches,
        "gate_median_ms": round(gate_ms, 2),
        "gate_baseline_status_query_ms": round(baseline_gate_ms, 2),
        "gate_ratio_to_baseline": round(gate_ms / baseline_gate_ms, 2),
        "report_readings_seeded": minutes,
        "report_median_ms": round(report_ms, 1),
        "report_bytes": size,
        "report_every_point_ms": round(raw_ms, 1),
        "report_every_point_bytes": raw_size,
        "report_ratio_to_baseline": round(report_ms / raw_ms, 2),
        "machine": platform.platform(),
    }
    for key, value in figures.items():
        print(f"{key:32} {value}")
    out = ROOT / "bench" / "results" / "alerting.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
