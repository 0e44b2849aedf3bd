"""Expiry tiers and expiry at midnight site time."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cloud.domain.expiry import (
    DEFAULT_TIERS,
    blocked_from,
    days_left,
    is_expired,
    parse_tiers,
    site_today,
    tier,
)

EXPIRES = date(2026, 6, 30)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 4, 30), None),  # 61 days
        (date(2026, 5, 1), 60),
        (date(2026, 5, 31), 30),
        (date(2026, 6, 22), 30),  # 8 days
        (date(2026, 6, 23), 7),
        (date(2026, 6, 30), 7),  # the last day of use
        (date(2026, 7, 1), None),  # expired: no warning tier, it is blocked
    ],
)
def test_tiers(today: date, expected: int | None) -> None:
    assert tier(EXPIRES, today, DEFAULT_TIERS) == expected


def test_per_product_tiers() -> None:
    tiers = parse_tiers("14, 90 ,3")
    assert tiers == (90, 14, 3)
    assert tier(EXPIRES, date(2026, 6, 10), tiers) == 90
    assert tier(EXPIRES, date(2026, 6, 27), tiers) == 3
    assert parse_tiers(None) == parse_tiers("") == (60, 30, 7)
    with pytest.raises(ValueError, match="product 0950: 'soon' is not a list"):
        parse_tiers("soon", "product 0950")
    with pytest.raises(ValueError, match="positive"):
        parse_tiers("30,-7")


def test_expired_from_the_day_after() -> None:
    assert days_left(EXPIRES, date(2026, 6, 30)) == 0
    assert not is_expired(EXPIRES, date(2026, 6, 30))
    assert is_expired(EXPIRES, date(2026, 7, 1))


def test_midnight_site_time() -> None:
    # Sydney is UTC+10 in July: midnight there is 14:00 UTC the day before.
    assert blocked_from(EXPIRES, "Australia/Sydney") == datetime(2026, 6, 30, 14, tzinfo=UTC)
    assert blocked_from(EXPIRES, "America/New_York") == datetime(2026, 7, 1, 4, tzinfo=UTC)
    assert blocked_from(EXPIRES, None) == datetime(2026, 7, 1, tzinfo=UTC)
    now = datetime(2026, 6, 30, 15, tzinfo=UTC)
    assert is_expired(EXPIRES, site_today(now, "Australia/Sydney"))
    assert not is_expired(EXPIRES, site_today(now, "Europe/Berlin"))
    with pytest.raises(ValueError, match="unknown site time zone 'Mars/Olympus'"):
        site_today(now, "Mars/Olympus")
