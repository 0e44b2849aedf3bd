"""Thinning a long series for a chart without losing a spike: each time bucket keeps its
minimum and its maximum, in time order. The control room's zone chart and the excursion
report's PDF chart both draw through it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

Point = tuple[datetime, float]
_TICK = timedelta(microseconds=1)


def extremes(
    points: Sequence[Point],
    buckets: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Point]:
    """At most 2 points per bucket: each bucket's minimum and maximum, in time order.

    `points` must be in time order; the buckets divide `start`..`end` (default: the first and
    last point's times). Ties keep the earliest, so a flat line stays put.
    """
    if len(points) <= 2 * buckets or buckets <= 0:
        return list(points)
    start = points[0][0] if start is None else start
    end = points[-1][0] if end is None else end
    width = max((end - start) / buckets, _TICK)
    kept: list[Point] = []
    current: int | None = None
    low: Point | None = None
    high: Point | None = None
    for point in points:
        index = min(buckets - 1, max(0, int((point[0] - start) / width)))
        if index != current:
            if low is not None and high is not None:
                kept.extend(in_time_order(low, high))
            current, low, high = index, point, point
            continue
        assert low is not None and high is not None
        if point[1] < low[1]:
            low = point
        if point[1] > high[1]:
            high = point
    if low is not None and high is not None:
        kept.extend(in_time_order(low, high))
    return kept


def in_time_order(low: Point, high: Point) -> list[Point]:
    """The two points in time order; one if they are the same."""
    if low is high or low == high:
        return [low]
    return [low, high] if low[0] <= high[0] else [high, low]
