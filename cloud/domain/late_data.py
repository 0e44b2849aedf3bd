"""Late data: a zone's samples at or before its detector's watermark (a truck back from a day
offline, out-of-order messages) are evaluated by replaying only the affected span, from early
enough to rebuild every rule's state, and reconciling the replay with the stored episodes.
Samples all after the watermark go straight to the detector (`evaluate_zone`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, Protocol

from cloud.domain.excursions import (
    STATE_VERSION,
    Episode,
    EpisodeKey,
    ExcursionDetector,
    Sample,
    Suppression,
)
from cloud.domain.monitoring import Profile

_TAKEN_AT = attrgetter("taken_at")


class ZoneHistory(Protocol):
    """What re-evaluation reads back: stored samples and stored episodes of one zone."""

    def samples_since(self, start: datetime) -> list[Sample]: ...

    def last_ok_before(self, t: datetime) -> datetime | None: ...

    def episodes_since(self, t: datetime) -> list[Episode]: ...


@dataclass(frozen=True)
class ZoneOutcome:
    """Episodes to write (new or changed), episodes the data no longer supports, new state."""

    changed: list[Episode]
    withdrawn: list[Episode]
    state: dict[str, Any]
    replayed_from: datetime | None = None


def stored_through(state: dict[str, Any] | None) -> datetime | None:
    """The watermark of a persisted state, as a detector made from it reads it.

    Every episode an evaluation stores starts at or before the watermark it leaves (a run at
    its first reading beyond, a gap at the last valid reading, a cumulative rule at a span's
    start), and the watermark never goes back: an episode that starts after a zone's stored
    watermark is not stored yet."""
    if not state or state.get("version") != STATE_VERSION or state.get("watermark") is None:
        return None
    return datetime.fromtimestamp(state["watermark"], UTC)


def latest(changes: Iterable[Episode]) -> list[Episode]:
    """The last version of each episode, in the order they first changed."""
    by_key: dict[EpisodeKey, Episode] = {}
    for e in changes:
        by_key[e.key] = e
    return list(by_key.values())


def replay_start(
    profile: Profile,
    suppressions: Sequence[Suppression],
    late_from: datetime,
    stored: Sequence[Episode],
    last_ok_before: datetime | None,
) -> datetime:
    """Early enough that every rule's state at `late_from` is rebuilt from the samples."""
    starts = [late_from, *(e.started_at for e in stored)]
    if last_ok_before is not None:
        starts.append(last_ok_before)
    grace = max((s.grace_min for s in suppressions), default=0.0)
    return min(starts) - timedelta(minutes=profile.lookback_min + profile.max_gap_min + grace)


def evaluate_zone(
    profile: Profile,
    suppressions: Sequence[Suppression],
    state: dict[str, Any] | None,
    samples: Sequence[Sample],
    history: ZoneHistory,
) -> ZoneOutcome:
    """New samples of a zone: incremental if all are after the watermark, else a replay."""
    detector = ExcursionDetector(profile, suppressions, state)
    watermark = detector.watermark
    if not samples:
        return ZoneOutcome([], [], detector.snapshot())
    late_from = min(map(_TAKEN_AT, samples))
    if watermark is None or late_from > watermark:
        return ZoneOutcome(latest(detector.feed(samples)), [], detector.snapshot())
    return reevaluate_zone(profile, suppressions, late_from, history)


def reevaluate_zone(
    profile: Profile,
    suppressions: Sequence[Suppression],
    late_from: datetime,
    history: ZoneHistory,
) -> ZoneOutcome:
    """Replay the zone from early enough before `late_from` and reconcile with what is stored."""
    stored = history.episodes_since(late_from)
    start = replay_start(
        profile, suppressions, late_from, stored, history.last_ok_before(late_from)
    )
    fresh = ExcursionDetector(profile, suppressions)
    replayed = latest(fresh.feed(history.samples_since(start)))
    relevant = {
        e.key: e
        for e in replayed
        if e.ended_at is None or e.ended_at >= late_from or e.started_at >= late_from
    }
    before = {e.key: e for e in stored}
    changed = [e for k, e in relevant.items() if before.get(k) != e]
    withdrawn = [e for k, e in before.items() if k not in relevant and not fresh.adopt_open_gap(e)]
    return ZoneOutcome(changed, withdrawn, fresh.snapshot(), start)
