"""Control room benchmark: the overview callback with 500 zones and 50 trucks, and the zone
chart for ranges up to a year, against a raw year of readings as the baseline.

Runs against a fresh, migrated PostgreSQL database filled through the real write path
(Store.write: statuses, readings with their hourly rollups). Each figure is the Dash
callback as the browser calls it, through Flask's test client, logged in. JSON goes to
bench/results/dashboard.json.

    .venv/bin/python bench/dashboard.py --repeat 20
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud.adapters.engine import make_engine, session_factory  # noqa: E402
from cloud.adapters.migrate import upgrade  # noqa: E402
from cloud.adapters.orm.quality import Excursion  # noqa: E402
from cloud.adapters.orm.readings import Reading  # noqa: E402
from cloud.domain.clock import utcnow  # noqa: E402
from cloud.service_layer.message_batch import MessageBatch  # noqa: E402
from cloud.service_layer.signatures import create_user  # noqa: E402
from cloud.service_layer.store import Store  # noqa: E402
from dashboard.app import create_app  # noqa: E402
from dashboard.present import local  # noqa: E402
from edge import wire  # noqa: E402

log = logging.getLogger("bench.dashboard")
PG_ADMIN = os.environ.get("COLDCHAIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
WAREHOUSES, ZONES_PER_WAREHOUSE, TRUCKS = 50, 10, 50
PASSWORD = "bench-password"
CHART_ZONE, CHART_SENSOR = "chart-zone", "chart-probe"
YEAR_MINUTES = 525_600
OVERVIEW_BUDGET_MS, CHART_BUDGET_MS, CHART_BUDGET_BYTES = 300, 100, 100_000
RANGES = ("1h", "6h", "24h", "7d", "30d", "365d")


def _status(gateway: str, site: str, kind: str, zones: list[str], now: datetime) -> Any:
    return wire.StatusMessage(
        v=1,
        gateway=gateway,
        site=site,
        state="online",
        at=now,
        site_info=wire.SiteInfo(id=site, name=site, kind=kind, timezone="Europe/London"),
        zones=[wire.ZoneInfo(id=z, name=z, low=2, high=8) for z in zones],
        sensors=[
            wire.SensorInfo(id=f"{z}-{n}", zone=z, model="XY-MD02", quantities=["temperature"])
            for z in zones
            for n in (1, 2)
        ],
    )


def fill(url: str, now: datetime) -> None:
    """500 warehouse zones, 50 trucks, two probes each, live readings, open excursions,
    and one zone with a year of readings every minute."""
    engine = make_engine(url)
    store = Store(engine)
    batch = MessageBatch()
    readings = []
    seq = 0
    sites = [
        (f"wh-{w:02d}", "warehouse", [f"wh-{w:02d}-z{z}" for z in range(ZONES_PER_WAREHOUSE)])
        for w in range(WAREHOUSES)
    ] + [(f"truck-{t:02d}", "truck", [f"truck-{t:02d}-reefer"]) for t in range(TRUCKS)]
    sites.append(("chart-site", "warehouse", [CHART_ZONE]))
    for site, kind, zones in sites:
        batch.statuses.append((_status(f"{site}-gw", site, kind, zones, now), now))
        for zone in zones:
            for n in (1, 2):
                seq += 1
                value = 4.0 + (seq % 30) / 10
                readings.append(
                    (f"{site}-gw", seq, f"{zone}-{n}", "temperature", value, "C", "ok", now, now)
                )
    batch.readings = readings
    store.write(batch)
    with session_factory(engine)() as session:
        session.info["actor"] = "bench"
        create_user(session, "qa", "Bench QA", "qa", PASSWORD)
        for i in range(0, WAREHOUSES * ZONES_PER_WAREHOUSE, 10):
            zone = f"wh-{i // 10:02d}-z{i % 10}"
            session.add(
                Excursion(
                    zone_id=zone,
                    profile_id="2-8C",
                    rule="alarm high > 8 for 15 min",
                    kind="high",
                    level="alarm",
                    started_at=now - timedelta(minutes=30),
                    peak=9.5,
                    limit=8.0,
                    state="open",
                )
            )
        session.commit()
    # A year of one probe, every minute, through the real write path (rollups included).
    start = now - timedelta(minutes=YEAR_MINUTES)
    chunk: list[tuple[Any, ...]] = []
    for minute in range(YEAR_MINUTES):
        taken = start + timedelta(minutes=minute)
        value = 5.0 + 1.5 * ((minute % 600) / 600)
        if minute == YEAR_MINUTES // 3:
            value = 14.2  # one minute's peak, a third of the year ago
        chunk.append(
            ("chart-gw", minute + 1, CHART_SENSOR, "temperature", value, "C", "ok", taken, now)
        )
        if len(chunk) == 50_000:
            store.write(_readings(chunk))
            chunk = []
    if chunk:
        store.write(_readings(chunk))
    status = _status("chart-gw", "chart-site", "warehouse", [CHART_ZONE], now)
    status.sensors[:] = [
        wire.SensorInfo(id=CHART_SENSOR, zone=CHART_ZONE, model="HMP4", quantities=["temperature"])
    ]
    once = MessageBatch()
    once.statuses.append((status, now))
    store.write(once)
    engine.dispose()


def _readings(rows: list[tuple[Any, ...]]) -> MessageBatch:
    batch = MessageBatch()
    batch.readings = rows
    return batch


def _call(client: Any, body: dict[str, Any]) -> tuple[float, int, Any]:
    started = time.perf_counter()
    response = client.post("/_dash-update-component", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"callback answered {response.status_code}: {response.get_data()[:300]}")
    return elapsed, len(response.get_data()), response.get_json()


def _login(client: Any) -> None:
    _call(
        client,
        {
            "output": "..login-location.href...login-message.children..",
            "outputs": [
                {"id": "login-location", "property": "href"},
                {"id": "login-message", "property": "children"},
            ],
            "inputs": [
                {"id": "login-submit", "property": "n_clicks", "value": 1},
                {"id": "login-password", "property": "n_submit", "value": 0},
            ],
            "state": [
                {"id": "login-username", "property": "value", "value": "qa"},
                {"id": "login-password", "property": "value", "value": PASSWORD},
                {"id": "login-location", "property": "search", "value": ""},
            ],
            "changedPropIds": ["login-submit.n_clicks"],
        },
    )


def overview_body(zones: list[str], gateways: list[str], seen: Any) -> dict[str, Any]:
    z_all = '{"type":"overview-zone","zone":["ALL"]}'
    g_all = '{"gateway":["ALL"],"type":"overview-gateway"}'
    names = [
        "overview-counts.children",
        "overview-updated.children",
        f"{z_all}.children",
        f"{g_all}.children",
        "overview-sites.children",
        "overview-seen.data",
    ]
    zone_ids = [{"id": {"type": "overview-zone", "zone": z}} for z in zones]
    gw_ids = [{"id": {"type": "overview-gateway", "gateway": g}} for g in gateways]
    return {
        "output": ".." + "...".join(names) + "..",
        "outputs": [
            {"id": "overview-counts", "property": "children"},
            {"id": "overview-updated", "property": "children"},
            [{**z, "property": "children"} for z in zone_ids],
            [{**g, "property": "children"} for g in gw_ids],
            {"id": "overview-sites", "property": "children"},
            {"id": "overview-seen", "property": "data"},
        ],
        "inputs": [{"id": "overview-tick", "property": "n_intervals", "value": 1}],
        "state": [{"id": "overview-seen", "property": "data", "value": seen}],
        "changedPropIds": ["overview-tick.n_intervals"],
    }


def chart_body(span: str) -> dict[str, Any]:
    return {
        "output": "..zone-graph.figure...zone-source.children...zone-excursions.children..",
        "outputs": [
            {"id": "zone-graph", "property": "figure"},
            {"id": "zone-source", "property": "children"},
            {"id": "zone-excursions", "property": "children"},
        ],
        "inputs": [
            {"id": "zone-pick", "property": "value", "value": CHART_ZONE},
            {"id": "zone-range", "property": "value", "value": span},
        ],
        "state": [],
        "changedPropIds": ["zone-range.value"],
    }


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
    }


def measure(repeat: int, call: Callable[[], tuple[float, int, Any]]) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(repeat):
        elapsed, size, _ = call()
        times.append(elapsed)
    return times, size


def raw_year_baseline(url: str, end: datetime) -> dict[str, Any]:
    """The naive chart: every reading of the year, read and serialised as a figure."""
    from sqlalchemy import select

    engine = make_engine(url)
    started = time.perf_counter()
    with session_factory(engine)() as session:
        rows = session.execute(
            select(Reading.taken_at, Reading.value)
            .where(Reading.sensor_id == CHART_SENSOR, Reading.taken_at <= end)
            .order_by(Reading.taken_at)
        ).all()
    figure = {
        "data": [
            {
                "type": "scatter",
                "x": [local(t, "Europe/London", "%Y-%m-%d %H:%M:%S") for t, _ in rows],
                "y": [round(v, 2) for _, v in rows],
            }
        ]
    }
    size = len(json.dumps(figure).encode())
    elapsed = (time.perf_counter() - started) * 1000
    engine.dispose()
    return {"points": len(rows), "ms": round(elapsed, 1), "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    name = f"coldchain_bench_dash_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        now = utcnow()
        started = time.perf_counter()
        fill(url, now)
        print(f"filled in {time.perf_counter() - started:.0f} s: 550 zones, a year of one probe")
        app = create_app(url, secret_key="bench")
        client = app.server.test_client()
        _login(client)

        zones = [f"wh-{w:02d}-z{z}" for w in range(WAREHOUSES) for z in range(ZONES_PER_WAREHOUSE)]
        zones += [f"truck-{t:02d}-reefer" for t in range(TRUCKS)] + [CHART_ZONE]
        gateways = [f"wh-{w:02d}-gw" for w in range(WAREHOUSES)]
        gateways += [f"truck-{t:02d}-gw" for t in range(TRUCKS)] + ["chart-gw", "chart-site-gw"]
        first_ms, first_bytes, first = _call(client, overview_body(zones, gateways, None))
        seen = first["response"]["overview-seen"]["data"]
        tick_times, tick_bytes = measure(
            args.repeat, lambda: _call(client, overview_body(zones, gateways, seen))
        )
        engine = make_engine(url)
        store = Store(engine)
        changed_times, changed_bytes, seq = [], 0, 10_000_000
        for round_ in range(args.repeat):  # a tenth of the zones got a new reading
            fresh = MessageBatch()
            at = utcnow()
            for zone in zones[round_ % 10 :: 10]:
                seq += 1
                site = zone.rsplit("-", 1)[0] if zone.startswith("wh-") else zone[: -len("-reefer")]
                fresh.readings.append(
                    (
                        f"{site}-gw",
                        seq,
                        f"{zone}-1",
                        "temperature",
                        3.0 + round_ / 10,
                        "C",
                        "ok",
                        at,
                        at,
                    )
                )
            store.write(fresh)
            elapsed, changed_bytes, answer = _call(client, overview_body(zones, gateways, seen))
            seen = answer["response"].get("overview-seen", {}).get("data", seen)
            changed_times.append(elapsed)
        engine.dispose()
        overview = {
            "zones": len(zones),
            "tenth_changed_tick_ms": stats(changed_times),
            "tenth_changed_tick_bytes": changed_bytes,
            "trucks": TRUCKS,
            "first_tick_ms": round(first_ms, 1),
            "first_tick_bytes": first_bytes,
            "steady_tick_ms": stats(tick_times),
            "steady_tick_bytes": tick_bytes,
            "budget_ms": OVERVIEW_BUDGET_MS,
        }
        print(
            f"overview, {len(zones)} zones: first tick {first_ms:.0f} ms "
            f"({first_bytes / 1000:.0f} KB), "
            f"steady tick median {overview['steady_tick_ms']['median']:.0f} ms, "
            f"p95 {overview['steady_tick_ms']['p95']:.0f} ms ({tick_bytes / 1000:.1f} KB); "
            f"a tenth changed: median {overview['tenth_changed_tick_ms']['median']:.0f} ms, "
            f"p95 {overview['tenth_changed_tick_ms']['p95']:.0f} ms "
            f"({changed_bytes / 1000:.0f} KB) [budget {OVERVIEW_BUDGET_MS} ms]"
        )

        charts = {}
        for span in RANGES:
            times, size = measure(args.repeat, lambda span=span: _call(client, chart_body(span)))
            _, _, answer = _call(client, chart_body(span))
            figure = answer["response"]["zone-graph"]["figure"]
            peak = max((max(t["y"]) for t in figure["data"] if t["y"]), default=None)
            charts[span] = {
                **stats(times),
                "bytes": size,
                "points": sum(len(t["y"]) for t in figure["data"]),
                "peak": peak,
            }
            print(
                f"zone chart {span:>4}: median {charts[span]['median']:.0f} ms, "
                f"p95 {charts[span]['p95']:.0f} ms, {size / 1000:.1f} KB, "
                f"{charts[span]['points']} points, peak {peak}"
            )
        baseline = raw_year_baseline(url, now)
        year = charts["365d"]
        print(
            f"raw year baseline: {baseline['points']} points, {baseline['ms']:.0f} ms, "
            f"{baseline['bytes'] / 1e6:.1f} MB; downsampled year is "
            f"{baseline['ms'] / year['median']:.0f}x faster and "
            f"{baseline['bytes'] / year['bytes']:.0f}x smaller, peak {year['peak']} kept"
        )
        met = (
            overview["steady_tick_ms"]["p95"] < OVERVIEW_BUDGET_MS
            and overview["tenth_changed_tick_ms"]["p95"] < OVERVIEW_BUDGET_MS
            and first_ms < OVERVIEW_BUDGET_MS
            and all(
                c["p95"] < CHART_BUDGET_MS and c["bytes"] < CHART_BUDGET_BYTES
                for c in charts.values()
            )
        )
        result = {
            "benchmark": "dashboard",
            "at": datetime.now(UTC).isoformat(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "repeat": args.repeat,
            "overview": overview,
            "zone_chart": charts,
            "baseline_raw_year": baseline,
            "ratio_vs_baseline": {
                "time": round(baseline["ms"] / year["median"], 1),
                "bytes": round(baseline["bytes"] / year["bytes"], 1),
            },
            "budgets": {
                "overview_ms": OVERVIEW_BUDGET_MS,
                "chart_p95_ms": CHART_BUDGET_MS,
                "chart_bytes": CHART_BUDGET_BYTES,
            },
            "met": met,
        }
        out = ROOT / "bench" / "results" / "dashboard.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        print(f"budgets {'met' if met else 'NOT met'}; written {out.relative_to(ROOT)}")
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
