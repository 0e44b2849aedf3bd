"""Hourly rollups of a batch: per sensor, quantity and UTC hour, only good values in the stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from cloud.domain.rollups import roll_up

H = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def reading(seq: int, value: float | None, minute: float, quality: str = "ok", sensor="s1"):
    at = H + timedelta(minutes=minute)
    return ("gw", seq, sensor, "temperature", value, "C", quality, at, at)


def test_stats_count_good_values_only_and_extremes_take_the_earliest_time() -> None:
    [group] = roll_up(
        [
            reading(1, 5.0, 10),
            reading(2, 3.0, 40),
            reading(3, 3.0, 20),  # ties the minimum, earlier
            reading(4, 7.5, 50),
            reading(5, 7.5, 30),  # ties the maximum, earlier
            reading(6, None, 15, "timeout"),
            reading(7, 99.0, 16, "out_of_range"),  # a value, but not a good one
        ]
    )
    assert (group.sensor_id, group.quantity, group.bucket_start) == ("s1", "temperature", H)
    assert (group.n, group.sum, group.bad) == (5, 26.0, 2)
    assert (group.min, group.min_at) == (3.0, H + timedelta(minutes=20))
    assert (group.max, group.max_at) == (7.5, H + timedelta(minutes=30))


def test_hours_are_utc_hours_whatever_the_offset_and_groups_come_sorted() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    late = reading(1, 4.0, 59.99)
    local = (
        "gw",
        2,
        "s0",
        "temperature",
        4.0,
        "C",
        "ok",
        (H + timedelta(minutes=45)).astimezone(ist),
        H,
    )
    groups = roll_up([late, reading(3, 6.0, 60), local])
    assert [(g.sensor_id, g.bucket_start, g.n) for g in groups] == [
        ("s0", H, 1),
        ("s1", H, 1),
        ("s1", H + timedelta(hours=1), 1),
    ]


def test_a_bucket_of_bad_readings_has_no_extremes() -> None:
    [group] = roll_up([reading(1, None, 5, "timeout"), reading(2, None, 6, "stale")])
    assert (group.n, group.sum, group.bad, group.min, group.max) == (0, 0.0, 2, None, None)
    assert group.min_at is None and group.max_at is None
