"""Store.write alone: CPU per reading in the worker and in its PostgreSQL backend, against COPY."""

# Decoded ingest batches (readings only, all new) go through Store.write into a fresh,
# migrated database; the baseline in the same run is a bare binary COPY of the same rows into
# an indexed copy of the readings table. CPU time is read from this process and from
# /proc/<backend pid>, so the server must run on this machine. CPU per reading moves far less
# than rates when other work shares the cores. JSON in bench/results/.
#
#     .venv/bin/python bench/store_write.py --readings 100000 --repeat 3

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e_ingest import code_version, fresh_database, reading_bodies  # noqa: E402

from cloud.adapters.engine import make_engine  # noqa: E402
from cloud.entrypoints.ingest import Delivery, decode_batch  # noqa: E402
from cloud.service_layer.message_batch import READING_COLUMNS, MessageBatch  # noqa: E402
from cloud.service_layer.store import _COPY_TYPES, Store  # noqa: E402
from edge import wire  # noqa: E402

log = logging.getLogger("bench.store_write")
PER_MESSAGE = 250
SEQ0 = 10**12


def backend_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a local process (a PostgreSQL backend)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batches(count: int, per_batch: int) -> list[MessageBatch]:
    """Decoded batches of `per_batch` readings, as the ingest worker would hand them over."""
    gateway, site = "bench-gw", "bench-site"
    records = [(SEQ0 + i, body) for i, body in enumerate(reading_bodies(count, site))]
    topic = wire.topic(site, gateway, "readings")
    now = datetime.now(UTC)
    deliveries = [
        Delivery(
            topic, wire.assemble_readings(gateway, site, records[i : i + PER_MESSAGE]), 0, 1, now
        )
        for i in range(0, count, PER_MESSAGE)
    ]
    step = max(per_batch // PER_MESSAGE, 1)
    return [decode_batch(deliveries[i : i + step]) for i in range(0, len(deliveries), step)]


def measure(write, pid: int, work: list) -> dict:  # type: ignore[no-untyped-def]
    """Wall and CPU seconds of write(item) over the work, in this process and the backend."""
    wall = ours = server = 0.0
    for item in work:
        w0, c0, s0 = time.perf_counter(), time.process_time(), backend_cpu_s(pid)
        write(item)
        wall += time.perf_counter() - w0
        ours += time.process_time() - c0
        server += backend_cpu_s(pid) - s0
    return {"wall_s": wall, "python_cpu_s": ours, "server_cpu_s": server}


def one_run(args: argparse.Namespace) -> dict:
    """Store.write of every batch, then COPY of the same rows, on one fresh database."""
    work = batches(args.readings, args.batch)
    rows = [r for b in work for r in b.readings]
    with fresh_database(args.pg_admin) as url:
        store = Store(make_engine(url))
        with store.engine.connect() as conn:  # the pool hands this connection back to write
            pid = conn.connection.driver_connection.info.backend_pid
        ours = measure(store.write, pid, work)
        store.engine.dispose()
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE readings_copy (LIKE readings INCLUDING ALL)")
            conn.commit()
            pid = conn.info.backend_pid

            def copy(chunk: list[tuple]) -> None:
                statement = f"COPY readings_copy ({', '.join(READING_COLUMNS)}) FROM STDIN"
                with conn.cursor().copy(statement + " (FORMAT BINARY)") as copier:
                    copier.set_types(_COPY_TYPES)
                    for row in chunk:
                        copier.write_row(row)
                conn.commit()

            chunks = [rows[i : i + args.batch] for i in range(0, len(rows), args.batch)]
            raw = measure(copy, pid, chunks)
            stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]  # type: ignore[index]
    if stored != len(rows):
        raise RuntimeError(f"Store.write stored {stored} of {len(rows)} readings")
    n = len(rows)
    for figures in (ours, raw):
        figures["per_s"] = n / figures["wall_s"]
        figures["python_us"] = figures["python_cpu_s"] / n * 1e6
        figures["server_us"] = figures["server_cpu_s"] / n * 1e6
    return {"store_write": ours, "raw_copy": raw, "load_average_before": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000, help="readings per transaction")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "store_write.json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runs = []
    for i in range(args.repeat):
        runs.append(one_run(args))
        log.info("run %d: %s", i + 1, runs[-1])

    def median(path: str, key: str) -> float:
        return statistics.median(run[path][key] for run in runs)

    result = {
        "benchmark": "store_write",
        "readings": args.readings,
        "batch": args.batch,
        "repeat": args.repeat,
        **{
            f"{path}_{key}": round(median(path, key), 2)
            for path in ("store_write", "raw_copy")
            for key in ("per_s", "python_us", "server_us")
        },
        "ratio_to_copy": round(median("store_write", "per_s") / median("raw_copy", "per_s"), 3),
        "runs": runs,
        "code": code_version(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    head = f"{args.readings} readings, {args.batch} a transaction, median of {args.repeat}"
    print(f"store_write: {head}")
    print(f"  {'path':<22}{'readings/s':>12}{'python us':>11}{'server us':>11}")
    for path, name in (("store_write", "Store.write"), ("raw_copy", "raw COPY (baseline)")):
        print(
            f"  {name:<22}{result[f'{path}_per_s']:>12,.0f}"
            f"{result[f'{path}_python_us']:>11.2f}{result[f'{path}_server_us']:>11.2f}"
        )
    print(f"  Store.write / raw COPY: {result['ratio_to_copy']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
