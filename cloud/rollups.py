"""Hourly rollups of readings: what one batch adds to each (sensor, quantity, hour).

Ingest merges a batch's rollups into reading_rollups in the transaction that inserts its
readings, from the readings that insert actually stored: a redelivered message adds nothing.
The merge is commutative, so late and out-of-order batches give the same rows as data that
arrived in order. Only readings with quality "ok" and a value count into n, sum, min and
max; `bad` counts the others. min_at and max_at are the earliest times of the extremes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, literal_column
from sqlalchemy.dialects import postgresql

from cloud.models import ReadingRollup

OK = "ok"


@dataclass(slots=True)
class HourlyRollup:
    """The aggregate of some readings of one sensor's quantity within one UTC hour."""

    sensor_id: str
    quantity: str
    bucket_start: datetime
    n: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    min_at: datetime | None = None
    max_at: datetime | None = None
    bad: int = 0

    def add(self, value: float | None, quality: str, taken_at: datetime) -> None:
        """Count one reading in."""
        if quality != OK or value is None:
            self.bad += 1
            return
        self.n += 1
        self.sum += value
        if self.min is None or (value, taken_at) < (self.min, self.min_at):
            self.min, self.min_at = value, taken_at
        if self.max is None or (-value, taken_at) < (-self.max, self.max_at):
            self.max, self.max_at = value, taken_at

    def row(self) -> dict[str, Any]:
        return {
            "sensor_id": self.sensor_id,
            "quantity": self.quantity,
            "bucket_start": self.bucket_start,
            "n": self.n,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
            "min_at": self.min_at,
            "max_at": self.max_at,
            "bad": self.bad,
        }


def hour_of(at: datetime) -> datetime:
    """The start of the UTC hour `at` falls in (`at` is aware UTC)."""
    return at.replace(minute=0, second=0, microsecond=0)


def roll_up(
    readings: Iterable[tuple[str, str, float | None, str, datetime]],
) -> list[HourlyRollup]:
    """Aggregate (sensor, quantity, value, quality, taken_at) rows per sensor, quantity, hour.

    Sorted by key, so concurrent writers lock rollup rows in the same order.
    """
    groups: dict[tuple[str, str, datetime], HourlyRollup] = {}
    for sensor, quantity, value, quality, taken_at in readings:
        key = (sensor, quantity, hour_of(taken_at))
        group = groups.get(key)
        if group is None:
            group = groups[key] = HourlyRollup(*key)
        group.add(value, quality, taken_at)
    return [groups[k] for k in sorted(groups)]


def merged_columns(stored: Any, incoming: Any) -> dict[str, Any]:
    """SET clause of the upsert: the stored row combined with the incoming one."""
    takes_min = (
        (stored.min.is_(None))
        | (incoming.min < stored.min)
        | ((incoming.min == stored.min) & (incoming.min_at < stored.min_at))
    )
    takes_max = (
        (stored.max.is_(None))
        | (incoming.max > stored.max)
        | ((incoming.max == stored.max) & (incoming.max_at < stored.max_at))
    )
    has_values = incoming.min.is_not(None)
    return {
        "n": stored.n + incoming.n,
        "sum": stored.sum + incoming.sum,
        "min": case((has_values & takes_min, incoming.min), else_=stored.min),
        "min_at": case((has_values & takes_min, incoming.min_at), else_=stored.min_at),
        "max": case((has_values & takes_max, incoming.max), else_=stored.max),
        "max_at": case((has_values & takes_max, incoming.max_at), else_=stored.max_at),
        "bad": stored.bad + incoming.bad,
    }


def upsert(insert: Any) -> Any:
    """INSERT .. ON CONFLICT DO UPDATE of rollup rows, for the dialect's `insert`."""
    stmt = insert(ReadingRollup.__table__)
    return stmt.on_conflict_do_update(
        index_elements=["sensor_id", "quantity", "bucket_start"],
        set_=merged_columns(ReadingRollup.__table__.c, stmt.excluded),
    )


# PostgreSQL: the readings insert and the rollup merge in one statement. The rollups are
# aggregated from what the INSERT returned, i.e. only the readings it stored.
_OK = f"quality = '{OK}' AND value IS NOT NULL"
PG_ROLLUP_FROM = """
    SELECT sensor_id, quantity, date_trunc('hour', taken_at, 'UTC') AS bucket_start,
        count(*) FILTER (WHERE ok) AS n,
        coalesce(sum(value) FILTER (WHERE ok), 0) AS sum,
        min(value) FILTER (WHERE ok) AS min,
        max(value) FILTER (WHERE ok) AS max,
        (array_agg(taken_at ORDER BY value, taken_at) FILTER (WHERE ok))[1] AS min_at,
        (array_agg(taken_at ORDER BY value DESC, taken_at) FILTER (WHERE ok))[1] AS max_at,
        count(*) FILTER (WHERE NOT ok) AS bad
    FROM {source}
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
"""
ROLLUP_COLUMNS = "sensor_id, quantity, bucket_start, n, sum, min, max, min_at, max_at, bad"


def pg_merge_sql(insert_readings: str) -> str:
    """One statement: `insert_readings` (an INSERT into readings) then its rollups merged."""
    merged = merged_columns(_Columns("reading_rollups"), _Columns("excluded"))
    dialect = postgresql.dialect()
    set_clause = ", ".join(
        f"{name} = {expr.compile(dialect=dialect)}" for name, expr in merged.items()
    )
    return (
        f"WITH stored AS ({insert_readings} RETURNING sensor_id, quantity, value, taken_at, "
        f"({_OK}) AS ok) "
        f"INSERT INTO reading_rollups ({ROLLUP_COLUMNS}) "
        f"{PG_ROLLUP_FROM.format(source='stored')} "
        f"ON CONFLICT (sensor_id, quantity, bucket_start) DO UPDATE SET {set_clause}"
    )


class _Columns:
    """Columns of a table alias as SQL expressions, for compiling merged_columns to text."""

    def __init__(self, alias: str):
        self.alias = alias

    def __getattr__(self, name: str) -> Any:
        return literal_column(f"{self.alias}.{name}")
