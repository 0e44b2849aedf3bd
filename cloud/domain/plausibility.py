"""Whether a reading's time can be believed: the window a gateway could have taken it in.

A reading stamped in the future (a gateway clock set wrong, a corrupt record) or before the
gateway could have taken it (a Raspberry Pi that polled before its clock synchronised
stamps 1970) is quarantined by ingest: kept with the reason, never evaluated by the rules,
never the latest reading (decision 0021).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# No gateway of this product took a reading before this date.
EARLIEST_PLAUSIBLE = datetime(2020, 1, 1, tzinfo=UTC)
FUTURE_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Readings taken after now + `skew` or before `earliest` are implausible."""

    skew: timedelta = FUTURE_SKEW
    earliest: datetime = EARLIEST_PLAUSIBLE

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        """(earliest, latest) plausible times, as of `now`."""
        return self.earliest, now + self.skew

    def reason(self, taken_at: datetime, now: datetime) -> str | None:
        """Why `taken_at` is not plausible as of `now`; None if it is."""
        earliest, latest = self.bounds(now)
        return implausible(taken_at, earliest, latest, self.skew)


def implausible(
    taken_at: datetime, earliest: datetime, latest: datetime, skew: timedelta
) -> str | None:
    """The reason a time lies outside [earliest, latest], or None (the hot path's form)."""
    if taken_at > latest:
        return (
            f"taken_at {taken_at.isoformat()} is in the future: later than the cloud's clock "
            f"plus {skew.total_seconds():.0f} s ({latest.isoformat()})"
        )
    if taken_at < earliest:
        return (
            f"taken_at {taken_at.isoformat()} is before the earliest plausible time "
            f"{earliest.isoformat()} (a gateway clock not yet synchronised?)"
        )
    return None
