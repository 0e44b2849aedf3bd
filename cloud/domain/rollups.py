"""Hourly rollups of readings: what one batch adds to each (sensor, quantity, hour).

Ingest merges a batch's rollups into reading_rollups in the transaction that inserts its
readings, from the readings that insert actually stored: a redelivered message adds nothing.
The merge is commutative, so late and out-of-order batches give the same rows as data that
arrived in order. Only readings with quality "ok" and a value count into n, sum, min and
max; `bad` counts the others. min_at and max_at are the earliest times of the extremes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

OK = "ok"
# positions in a reading tuple (cloud.service_layer.message_batch.READING_COLUMNS)
_SENSOR, _QUANTITY, _VALUE, _QUALITY, _TAKEN_AT = 2, 3, 4, 6, 7


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
    newest: Sequence[Any] | None = None  # the latest reading, in the latest hour of a sensor

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


def roll_up(readings: Iterable[Sequence[Any]]) -> list[HourlyRollup]:
    """Aggregate readings (tuples in READING_COLUMNS order) per sensor and hour.

    Sorted by key, so concurrent writers lock rollup rows in the same order.
    """
    # Keyed first on the local hour and the offset as stamped: attribute reads, far cheaper
    # than converting every reading's time (this is the hot loop of ingest).
    local: dict[tuple[Any, ...], list[Sequence[Any]]] = defaultdict(list)
    for r in readings:
        t = r[_TAKEN_AT]
        local[r[_SENSOR], r[_QUANTITY], t.year, t.month, t.day, t.hour, t.tzinfo].append(r)
    members: dict[tuple[str, str, datetime], list[Sequence[Any]]] = defaultdict(list)
    for (sensor, quantity, year, month, day, hour, tz), rows in local.items():
        start = datetime(year, month, day, hour, tzinfo=tz).astimezone(UTC)
        if start.minute == 0:
            members[sensor, quantity, start].extend(rows)
        else:  # an offset of hours and minutes: a local hour spans two UTC hours
            for r in rows:
                at = r[_TAKEN_AT].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
                members[sensor, quantity, at].append(r)
    result = []
    keys = sorted(members)
    for i, (sensor, quantity, bucket_start) in enumerate(keys):
        rows = members[sensor, quantity, bucket_start]
        good = [
            (r[_VALUE], r[_TAKEN_AT]) for r in rows if r[_QUALITY] == OK and r[_VALUE] is not None
        ]
        group = HourlyRollup(sensor, quantity, bucket_start, bad=len(rows) - len(good))
        if good:
            group.n, group.sum = len(good), math.fsum(v for v, _ in good)
            group.min, group.min_at = min(good)  # the lowest value, earliest first
            group.max = max(v for v, _ in good)
            group.max_at = min(at for v, at in good if v == group.max)
        if i + 1 == len(keys) or keys[i + 1][:2] != (sensor, quantity):
            group.newest = max(rows, key=itemgetter(_TAKEN_AT))
        result.append(group)
    return result
