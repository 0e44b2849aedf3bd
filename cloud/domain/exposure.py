"""Exposure: the overlap of an excursion with the custody of each batch in its zone.

For each batch present (any of its items), the minutes it was there during the excursion,
the lowest and highest zone value it saw, and the degree-minutes beyond the limit. Zone
values are a step function: each value holds until the next one (left-rectangle rule).
A batch's stability budget is spent by the union of its out-of-range exposures, so two
levels of the same episode (warning and alarm) or a cumulative rule are not counted twice,
and the budget follows the batch from warehouse to truck to warehouse.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

BUDGET_KINDS = frozenset({"high", "low", "freezing", "cumulative"})  # out of range


@dataclass(frozen=True, slots=True)
class Presence:
    """An item of a batch in the zone from started_at until ended_at (None: still there)."""

    item_id: int
    batch_id: int
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class BatchExposure:
    batch_id: int
    items: int
    minutes: float
    min_value: float | None
    max_value: float | None
    degree_minutes: float
    started_at: datetime
    ended_at: datetime


Span = tuple[float, float]


def union(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans merged, in order."""
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


class ZoneSeries:
    """A zone's values as a step function of time, for overlaps with presence spans."""

    def __init__(self, points: Iterable[tuple[datetime, float]], *, high: bool):
        # Several sensors at one time: the worst value stands for the zone.
        by_time: dict[float, float] = {}
        pick = max if high else min
        for at, value in points:
            t = at.timestamp()
            by_time[t] = pick(by_time[t], value) if t in by_time else value
        self.times = sorted(by_time)
        self.values = [by_time[t] for t in self.times]

    def over(self, start: float, end: float) -> Iterable[tuple[float, float, float]]:
        """(from, to, value) pieces covering [start, end) where a value is known."""
        i = max(bisect_right(self.times, start) - 1, 0)
        n = len(self.times)
        while i < n and self.times[i] < end:
            a = max(self.times[i], start)
            b = min(self.times[i + 1] if i + 1 < n else end, end)
            if b > a:
                yield a, b, self.values[i]
            i += 1


def batch_exposures(
    start: datetime,
    end: datetime,
    presences: Iterable[Presence],
    series: ZoneSeries | None,
    limit: float | None,
    high: bool,
) -> list[BatchExposure]:
    """Every batch present in [start, end): minutes, min/max value and degree-minutes."""
    s, e = start.timestamp(), end.timestamp()
    spans: dict[int, list[Span]] = {}
    items: dict[int, set[int]] = {}
    for p in presences:
        a = max(p.started_at.timestamp(), s)
        b = min(p.ended_at.timestamp() if p.ended_at else e, e)
        if b > a or (b == a == s and s == e):
            spans.setdefault(p.batch_id, []).append((a, b))
            items.setdefault(p.batch_id, set()).add(p.item_id)
    result = []
    for batch_id, batch_spans in sorted(spans.items()):
        merged = union(batch_spans) or [batch_spans[0]]
        lo = hi = None
        degree_seconds = 0.0
        if series is not None:
            for a, b in merged:
                for x, y, v in series.over(a, b):
                    lo = v if lo is None or v < lo else lo
                    hi = v if hi is None or v > hi else hi
                    if limit is not None:
                        beyond = v - limit if high else limit - v
                        degree_seconds += max(beyond, 0.0) * (y - x)
        result.append(
            BatchExposure(
                batch_id=batch_id,
                items=len(items[batch_id]),
                minutes=sum(b - a for a, b in merged) / 60,
                min_value=lo,
                max_value=hi,
                degree_minutes=degree_seconds / 60,
                started_at=datetime.fromtimestamp(merged[0][0], start.tzinfo),
                ended_at=datetime.fromtimestamp(merged[-1][1], start.tzinfo),
            )
        )
    return result


def spent_minutes(exposures: Sequence[tuple[str, datetime, datetime]]) -> float:
    """Minutes out of range a batch spent: the union of its (kind, start, end) exposures."""
    spans = [(a.timestamp(), b.timestamp()) for kind, a, b in exposures if kind in BUDGET_KINDS]
    return sum(b - a for a, b in union(spans)) / 60


def remaining_budget(budget_min: float | None, spent_min: float) -> float | None:
    """Minutes of the stability budget left (negative when overspent); None if no budget."""
    return None if budget_min is None else budget_min - spent_min


@dataclass(frozen=True, slots=True)
class ExposureLine:
    """One stored exposure of a batch, as a summary reads it."""

    zone_id: str
    kind: str
    level: str
    started_at: datetime
    ended_at: datetime
    degree_minutes: float


@dataclass(frozen=True, slots=True)
class ExposureSummary:
    """A batch's exposure counted once: the union of its spans, and each level's own union."""

    minutes: float
    degree_minutes: float
    by_level: dict[str, float]  # level -> minutes (the union of that level's spans)


def summarise(lines: Sequence[ExposureLine]) -> ExposureSummary:
    """Time out of range counted once across levels and rules (as the budget counts it).

    Exposures of one zone whose spans overlap belong to one episode seen at several levels
    (or by a cumulative rule): its degree-minutes are the largest any of them measured, not
    their sum, since each measured the same readings against the same episode."""
    spans = [(x.started_at.timestamp(), x.ended_at.timestamp()) for x in lines]
    minutes = sum(b - a for a, b in union(spans)) / 60
    by_level: dict[str, float] = {}
    for level in sorted({x.level for x in lines}):
        mine = [
            (x.started_at.timestamp(), x.ended_at.timestamp()) for x in lines if x.level == level
        ]
        by_level[level] = sum(b - a for a, b in union(mine)) / 60
    degree_minutes = 0.0
    by_zone: dict[str, list[ExposureLine]] = {}
    for x in lines:
        by_zone.setdefault(x.zone_id, []).append(x)
    for zone_lines in by_zone.values():
        zone_lines.sort(key=lambda x: x.started_at)
        episode_end: datetime | None = None
        largest = 0.0
        for x in zone_lines:
            if episode_end is not None and x.started_at > episode_end:
                degree_minutes += largest
                largest = 0.0
            largest = max(largest, x.degree_minutes)
            episode_end = x.ended_at if episode_end is None else max(episode_end, x.ended_at)
        degree_minutes += largest
    return ExposureSummary(minutes, degree_minutes, by_level)
