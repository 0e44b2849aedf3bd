"""Expiry: warning tiers before a batch's expiry date, and when a batch counts as expired
at a site (from midnight site time after its expiry date)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIERS = (60, 30, 7)


def parse_tiers(text: str | None, where: str = "expiry tiers") -> tuple[int, ...]:
    """ "60,30,7" -> (60, 30, 7), largest first; None or "" gives the defaults."""
    if not text or not text.strip():
        return DEFAULT_TIERS
    try:
        days = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"{where}: {text!r} is not a list of whole days like 60,30,7") from exc
    if any(d <= 0 for d in days):
        raise ValueError(f"{where}: {text!r} has a tier that is not a positive number of days")
    return tuple(sorted(set(days), reverse=True))


def site_zone(name: str | None) -> ZoneInfo:
    """The site's time zone (UTC when unset); an unknown name is an error that names it."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown site time zone {name!r}") from exc


def site_today(now: datetime, timezone: str | None) -> date:
    """The calendar date at the site at `now`."""
    return now.astimezone(site_zone(timezone)).date()


def days_left(expires_on: date, today: date) -> int:
    """Days until the expiry date (0 on the day itself, negative once past)."""
    return (expires_on - today).days


def is_expired(expires_on: date, today: date) -> bool:
    """A batch may be used until the end of its expiry date."""
    return today > expires_on


def blocked_from(expires_on: date, timezone: str | None) -> datetime:
    """The UTC instant a batch expires at a site: midnight site time after its expiry date."""
    local = datetime.combine(expires_on + timedelta(days=1), time(0), site_zone(timezone))
    return local.astimezone(UTC)


def tier(expires_on: date, today: date, tiers: Sequence[int] = DEFAULT_TIERS) -> int | None:
    """The tightest warning tier (days) the batch has entered, or None (not yet, or expired)."""
    left = days_left(expires_on, today)
    if left < 0:
        return None
    entered = [t for t in tiers if left <= t]
    return min(entered) if entered else None
