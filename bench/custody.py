"""Custody query benchmark: where is item X, custody of batch B, what was in zone Z, on
PostgreSQL with 1 million items and 10 million RFID observations."""

# A fresh migrated database gets 20 warehouses (dock, cold room, freezer, ambient zones) and 10
# trucks, 5,000 batches of 200 items (COPY), and 10 observations per item (generated in the
# server from the items: dock, five reads in the cold room, two on a truck, two in another
# warehouse's cold room, six hours apart, items arriving over a year). Custody intervals are
# derived in bulk in SQL (consecutive reads in the same zone collapse; an interval ends where
# the next zone's begins), which is what the per-item derivation gives for such clean paths.
# The queries are then timed through the service layer (ORM, as the API runs them), and the
# same SQL through bare psycopg as the baseline. JSON in bench/results/.
#
#     .venv/bin/python bench/custody.py --items 1000000

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud.adapters.engine import make_engine, session_factory  # noqa: E402
from cloud.adapters.migrate import upgrade  # noqa: E402
from cloud.service_layer.custody import (  # noqa: E402
    batch_timeline_query,
    current_custody,
    find_item,
    zone_window_query,
)
from edge.gs1 import check_digit  # noqa: E402

log = logging.getLogger("bench.custody")

TARGETS_MS = {"where_is_item": 20.0, "batch_custody": 20.0, "zone_between": 200.0}
WAREHOUSES, TRUCKS, PRODUCTS = 20, 10, 100
ITEMS_PER_BATCH = 200
READS_PER_ITEM = 10
T0 = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_S = 365 * 24 * 3600
STEP = timedelta(hours=6)
PAGE = 500  # the API's largest page


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300, help="timed calls per question")
    parser.add_argument(
        "--pg-admin",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL URL allowed to CREATE and DROP DATABASE",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    parser.add_argument(
        "--database", help="time the questions on a database a --keep run left (no loading)"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "custody.json")
    args = parser.parse_args(argv)
    if args.items < ITEMS_PER_BATCH or args.queries < 1:
        parser.error(f"--items must be at least {ITEMS_PER_BATCH}; --queries positive")
    return args


@contextmanager
def fresh_database(admin_url: str, keep: bool) -> Iterator[str]:
    """A new migrated PostgreSQL database, dropped on exit unless kept."""
    name = f"coldchain_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = admin_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            upgrade(url)
            yield url
        finally:
            if keep:
                log.info("kept %s", url)
            else:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the data -----------------------------------------------------------------------------


def gtin(n: int) -> str:
    body = f"0950600{n:06d}"
    return body + check_digit(body)


def copy_rows(conn: psycopg.Connection, table: str, columns: str, rows: Iterator[str]) -> None:
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for count, row in enumerate(rows, 1):
            buffer.write(row)
            if count % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def load(url: str, items: int) -> dict[str, float]:
    """Master data, observations and derived custody; seconds taken per stage."""
    took: dict[str, float] = {}
    batches = items // ITEMS_PER_BATCH
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET maintenance_work_mem = '512MB'")
        started = time.perf_counter()
        sites = [(f"w{w}", "warehouse") for w in range(WAREHOUSES)]
        sites += [(f"t{t}", "truck") for t in range(TRUCKS)]
        copy_rows(
            conn, "sites", "id, name, kind, timezone", (f"{s}\t{s}\t{k}\tUTC\n" for s, k in sites)
        )
        zones = [
            (f"w{w}-{kind}", f"w{w}", kind)
            for w in range(WAREHOUSES)
            for kind in ("dock", "cold", "freezer", "ambient")
        ]
        zones += [(f"t{t}-reefer", f"t{t}", "truck_compartment") for t in range(TRUCKS)]
        copy_rows(
            conn, "zones", "id, site_id, name, kind", (f"{z}\t{s}\t{z}\t{k}\n" for z, s, k in zones)
        )
        copy_rows(
            conn, "gateways", "id, site_id, state", (f"{s}-gw\t{s}\tonline\n" for s, _ in sites)
        )
        steps = {"dock": "receiving", "truck_compartment": "loading"}
        copy_rows(
            conn,
            "read_points",
            "id, zone_id, gateway_id, reader, business_step",
            (f"{z}\t{z}\t{s}-gw\t{z}\t{steps.get(k, 'storing')}\n" for z, s, k in zones),
        )
        copy_rows(
            conn,
            "products",
            "gtin, name, freeze_sensitive",
            (f"{gtin(p)}\tproduct {p}\tf\n" for p in range(PRODUCTS)),
        )
        copy_rows(
            conn,
            "batches",
            "id, gtin, lot, expires_on, quantity, status",
            (
                f"{b + 1}\t{gtin(b % PRODUCTS)}\tL{b + 1:06d}\t2027-12-31\t"
                f"{ITEMS_PER_BATCH}\tavailable\n"
                for b in range(batches)
            ),
        )
        copy_rows(
            conn,
            "items",
            "id, gtin, serial, epc, batch_id",
            (
                f"{n + 1}\t{gtin((n // ITEMS_PER_BATCH) % PRODUCTS)}\t{n + 1}\t30{n + 1:022X}\t"
                f"{n // ITEMS_PER_BATCH + 1}\n"
                for n in range(batches * ITEMS_PER_BATCH)
            ),
        )
        took["master_data_s"] = time.perf_counter() - started

        started = time.perf_counter()
        # Secondary indexes are built once after the load rather than row by row.
        conn.execute("DROP INDEX observations_epc_time, observations_point_time")
        conn.execute(
            """
            INSERT INTO observations (gateway_id, seq, epc, read_point, first_seen, last_seen,
                                      count, received_at)
            SELECT 'w' || (i.id %% %(w)s) || '-gw', i.id * %(r)s + k, i.epc, p.point, p.at, p.at,
                   1, p.at
            FROM items i
            CROSS JOIN generate_series(0, %(r)s - 1) AS k
            CROSS JOIN LATERAL (
                SELECT CASE
                    WHEN k = 0 THEN 'w' || (i.id %% %(w)s) || '-dock'
                    WHEN k < 6 THEN 'w' || (i.id %% %(w)s) || '-cold'
                    WHEN k < 8 THEN 't' || (i.id %% %(t)s) || '-reefer'
                    ELSE 'w' || ((i.id + 7) %% %(w)s) || '-cold'
                END AS point,
                %(t0)s::timestamptz + (i.id * %(spread)s) * interval '1 second'
                    + k * %(step)s * interval '1 second' AS at
            ) AS p
            """,
            {
                "w": WAREHOUSES,
                "t": TRUCKS,
                "r": READS_PER_ITEM,
                "t0": T0,
                "spread": YEAR_S / items,
                "step": STEP.total_seconds(),
            },
        )
        conn.execute("CREATE INDEX observations_epc_time ON observations (epc, first_seen)")
        conn.execute(
            "CREATE INDEX observations_point_time ON observations (read_point, first_seen)"
        )
        took["observations_s"] = time.perf_counter() - started

        started = time.perf_counter()
        conn.execute("DROP INDEX custody_item_time, custody_zone_time, custody_open_by_zone")
        conn.execute(
            """
            INSERT INTO custody_intervals (item_id, zone_id, started_at, ended_at, basis)
            SELECT item_id, zone_id, first_seen,
                   lead(first_seen) OVER (PARTITION BY item_id ORDER BY first_seen), 'observed'
            FROM (
                SELECT i.id AS item_id, rp.zone_id, o.first_seen,
                       lag(rp.zone_id) OVER (PARTITION BY i.id ORDER BY o.first_seen) AS before
                FROM observations o
                JOIN items i ON i.epc = o.epc
                JOIN read_points rp ON rp.id = o.read_point
            ) AS reads
            WHERE before IS DISTINCT FROM zone_id
            """
        )
        conn.execute("CREATE INDEX custody_item_time ON custody_intervals (item_id, started_at)")
        conn.execute("CREATE INDEX custody_zone_time ON custody_intervals (zone_id, started_at)")
        conn.execute(
            "CREATE INDEX custody_open_by_zone ON custody_intervals (zone_id) "
            "WHERE ended_at IS NULL"
        )
        took["custody_s"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        took["vacuum_analyze_s"] = time.perf_counter() - started
    rows = counts(url)
    log.info("loaded %s in %s", rows, {k: round(v, 1) for k, v in took.items()})
    return {**took, **rows}


def counts(url: str) -> dict[str, float]:
    """Rows in the tables the questions read."""
    with psycopg.connect(url) as conn:
        return {
            f"{table}_rows": conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("items", "observations", "custody_intervals")
        }


# --- the questions ------------------------------------------------------------------------


def timed(call: Callable[[int], int], queries: int, seed: int) -> dict[str, float]:
    """Median and p95 milliseconds of `call(i)` over `queries` calls (after 10 warm-ups)."""
    rng = random.Random(seed)
    picks = [rng.randrange(1 << 30) for _ in range(queries + 10)]
    rows = []
    for pick in picks[:10]:
        call(pick)
    times = []
    for pick in picks[10:]:
        started = time.perf_counter()
        rows.append(call(pick))
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3),
        "rows_median": statistics.median(rows),
    }


def questions(url: str, items: int, queries: int) -> dict[str, dict[str, float]]:
    batches = items // ITEMS_PER_BATCH
    span = timedelta(seconds=YEAR_S)
    day = timedelta(days=1)

    def window(pick: int) -> tuple[str, datetime, datetime]:
        zone = f"w{pick % WAREHOUSES}-cold"
        start = T0 + timedelta(days=7) + (pick % 300) * (span - timedelta(days=30)) / 300
        return zone, start, start + day

    def item_of(pick: int) -> tuple[str, str]:
        n = pick % (batches * ITEMS_PER_BATCH)
        return gtin((n // ITEMS_PER_BATCH) % PRODUCTS), str(n + 1)

    session = session_factory(make_engine(url))()

    def where_is(pick: int) -> int:
        item = find_item(session, *item_of(pick))
        assert item is not None
        return 0 if current_custody(session, item.id) is None else 1

    def batch_custody(pick: int) -> int:
        query = batch_timeline_query(pick % batches + 1, rows=True).limit(PAGE + 1)
        return len(session.execute(query).all())

    def zone_between(pick: int) -> int:
        query = zone_window_query(*window(pick), rows=True).limit(PAGE + 1)
        return len(session.execute(query).all())

    raw = psycopg.connect(url, autocommit=True)

    def raw_where_is(pick: int) -> int:
        row = raw.execute(
            "SELECT c.zone_id FROM items i JOIN custody_intervals c ON c.item_id = i.id "
            "WHERE i.gtin = %s AND i.serial = %s AND c.ended_at IS NULL",
            item_of(pick),
        ).fetchall()
        return len(row)

    def raw_batch(pick: int) -> int:
        return len(
            raw.execute(
                "SELECT c.* FROM custody_intervals c JOIN items i ON i.id = c.item_id "
                "WHERE i.batch_id = %s ORDER BY c.item_id, c.started_at, c.id LIMIT %s",
                (pick % batches + 1, PAGE + 1),
            ).fetchall()
        )

    def raw_zone(pick: int) -> int:
        zone, start, end = window(pick)
        return len(
            raw.execute(
                "SELECT * FROM custody_intervals WHERE zone_id = %s AND started_at <= %s "
                "AND (ended_at IS NULL OR ended_at >= %s) ORDER BY started_at, item_id LIMIT %s",
                (zone, end, start, PAGE + 1),
            ).fetchall()
        )

    results = {}
    for name, service, baseline in (
        ("where_is_item", where_is, raw_where_is),
        ("batch_custody", batch_custody, raw_batch),
        ("zone_between", zone_between, raw_zone),
    ):
        measured = timed(service, queries, seed=len(name))
        bare = timed(baseline, queries, seed=len(name))
        results[name] = {
            **measured,
            "baseline_median_ms": bare["median_ms"],
            "ratio_to_baseline": round(measured["median_ms"] / bare["median_ms"], 2),
            "target_ms": TARGETS_MS[name],
            "meets_target": measured["median_ms"] < TARGETS_MS[name],
        }
        log.info("%s: %s", name, results[name])
    session.close()
    raw.close()
    return results


def code_version() -> dict:
    """The commit measured, and whether the work tree differed from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "cloud", "bench"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def table(result: dict) -> str:
    lines = [
        f"custody: {result['load']['items_rows']:,} items, "
        f"{result['load']['observations_rows']:,} observations, "
        f"{result['load']['custody_intervals_rows']:,} custody intervals, "
        f"{result['queries']} queries each",
        f"  {'question':<16}{'median ms':>10}{'p95 ms':>9}{'bare SQL':>10}{'ratio':>7}"
        f"{'target':>8}  rows",
    ]
    for name, q in result["questions"].items():
        lines.append(
            f"  {name:<16}{q['median_ms']:>10.2f}{q['p95_ms']:>9.2f}"
            f"{q['baseline_median_ms']:>10.2f}"
            f"{q['ratio_to_baseline']:>7.2f}{q['target_ms']:>8.0f}  {q['rows_median']:g}"
            f"  {'met' if q['meets_target'] else 'NOT met'}"
        )
    load = result["load"]
    if "custody_s" not in load:
        return "\n".join(lines)
    lines.append(
        "  load: master data {master_data_s:.0f} s, observations {observations_s:.0f} s, "
        "custody derivation {custody_s:.0f} s, vacuum analyze {vacuum_analyze_s:.0f} s".format(
            **load
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build the data, time the questions, print the table, write the JSON."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.database:
        loaded = counts(args.database)
        asked = questions(args.database, loaded["items_rows"], args.queries)
    else:
        with fresh_database(args.pg_admin, args.keep) as url:
            loaded = load(url, args.items)
            asked = questions(url, args.items, args.queries)
    result = {
        "benchmark": "custody",
        "items": args.items,
        "queries": args.queries,
        "page_limit": PAGE,
        "load": loaded,
        "questions": asked,
        "meets_targets": all(q["meets_target"] for q in asked.values()),
        "code": code_version(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    log.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
