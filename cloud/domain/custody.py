"""Custody: where each item was, and when, derived from sightings and aggregation.

Pure: no I/O and no clock; the events are a set, sorted by time and content before use, so
a truck's backlog arriving a day late yields the timeline in-order arrival would have.
The rules (docs/decisions/0009-custody-derivation.md):
- Last known location: a sighting places its subject in the zone until its next sighting.
- A departure (loading or shipping at a zone that is not a truck) ends the stay there. Seen
  next in a truck's zone, the subject was on that truck since the departure (inferred); seen
  next at the same site, the load was undone; seen next elsewhere with no truck known, the
  leg is left as a gap rather than guessed.
- Packing moves contents with their unit: a unit's sightings between pack and unpack are
  sightings of its contents (via parent), at any depth (pallet > case > item).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

DEPARTURE_STEPS = frozenset({"loading", "shipping"})


class Source(StrEnum):
    """Where a sighting came from."""

    RFID = "rfid"
    SCAN = "scan"  # a barcode scanned by a person
    RECORD = "record"  # a lifecycle step recorded for the item (loaded, received, delivered)


class Basis(StrEnum):
    """How a custody interval was established."""

    OBSERVED = "observed"  # the subject itself was seen (read, scanned, recorded) there
    INFERRED = "inferred"  # a truck leg between a departure and the next sighting
    VIA_PARENT = "via_parent"  # the unit the subject was packed in was seen there


@dataclass(frozen=True, slots=True, order=True)
class Place:
    """A zone, the site it belongs to, and whether it is a truck compartment."""

    zone: str
    site: str
    truck: bool = False


@dataclass(frozen=True, slots=True)
class Sighting:
    """An item or logistic unit seen at a place, in a business step, at a time."""

    subject: str
    place: Place
    step: str
    at: datetime
    source: Source = Source.RFID
    direction: str | None = None  # "in" / "out" through a door, when the reader can tell

    @property
    def departs(self) -> bool:
        """True for a read on the way out of a site onto a truck."""
        return self.step in DEPARTURE_STEPS and not self.place.truck and self.direction != "in"


@dataclass(frozen=True, slots=True)
class Pack:
    """`child` (an item or unit) packed into the unit `parent` at `at`."""

    parent: str
    child: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Unpack:
    """`child` taken out of the unit `parent` at `at`."""

    parent: str
    child: str
    at: datetime


CustodyEvent = Sighting | Pack | Unpack


@dataclass(frozen=True, slots=True)
class CustodyInterval:
    """The subject was in `zone` from `start` to `end` (None: still there)."""

    subject: str
    zone: str
    start: datetime
    end: datetime | None
    basis: Basis

    def covers(self, at: datetime) -> bool:
        """True if `at` lies within the interval, ends included."""
        return self.start <= at and (self.end is None or at <= self.end)

    def overlaps(self, other: CustodyInterval) -> bool:
        """True if the two share a stretch of time longer than an instant."""
        ends_after = self.end is None or other.start < self.end
        return ends_after and (other.end is None or self.start < other.end)


def item_key(gtin: str, serial: str) -> str:
    """The subject key of a serialised item: its GS1 element string (01)..(21).."""
    return f"(01){gtin}(21){serial}"


def unit_key(sscc: str) -> str:
    """The subject key of a logistic unit: its GS1 element string (00).."""
    return f"(00){sscc}"


Timelines = dict[str, tuple[CustodyInterval, ...]]
_Span = tuple[str, datetime, datetime | None]  # parent, packed at, unpacked at


def derive_custody(
    events: Iterable[CustodyEvent], subjects: Iterable[str] | None = None
) -> Timelines:
    """Custody intervals per subject, oldest first (every subject in the events, unless named)."""
    sightings: dict[str, list[Sighting]] = defaultdict(list)
    packing: list[Pack | Unpack] = []
    for event in set(events):
        if isinstance(event, Sighting):
            sightings[event.subject].append(event)
        else:
            packing.append(event)
    spans = containment(packing)
    wanted = sorted(set(sightings) | set(spans) if subjects is None else set(subjects))
    return {s: _intervals(s, _stream(s, sightings, spans, ())) for s in wanted}


def containment(events: Iterable[Pack | Unpack]) -> dict[str, list[_Span]]:
    """Per child, the units it was packed in: (parent, packed at, unpacked at or None)."""
    by_child: dict[str, list[Pack | Unpack]] = defaultdict(list)
    for event in set(events):
        if event.parent != event.child:
            by_child[event.child].append(event)
    result: dict[str, list[_Span]] = {}
    for child, events_of_child in by_child.items():
        spans: list[_Span] = []
        current: tuple[str, datetime] | None = None
        # At one instant an unpack goes first: out of one unit and into another is a move.
        for event in sorted(events_of_child, key=lambda e: (e.at, isinstance(e, Pack), e.parent)):
            if isinstance(event, Pack):
                if current is not None and current[0] == event.parent:
                    continue  # packed twice into the same unit: the first time counts
                if current is not None:
                    spans.append((current[0], current[1], event.at))  # repacked, no unpack read
                current = (event.parent, event.at)
            elif current is not None and current[0] == event.parent:
                spans.append((current[0], current[1], event.at))
                current = None
        if current is not None:
            spans.append((current[0], current[1], None))
        result[child] = spans
    return result


def _stream(
    subject: str,
    sightings: Mapping[str, Sequence[Sighting]],
    spans: Mapping[str, Sequence[_Span]],
    path: tuple[str, ...],
) -> list[tuple[Sighting, bool]]:
    """The subject's own sightings and those of the units it was in, flagged via-parent."""
    stream = [(s, False) for s in sightings.get(subject, ())]
    path = (*path, subject)
    for parent, packed, unpacked in spans.get(subject, ()):
        if parent in path:
            continue  # a packing cycle is bad data; it must not recurse forever
        for sighting, _ in _stream(parent, sightings, spans, path):
            if packed <= sighting.at and (unpacked is None or sighting.at < unpacked):
                stream.append((sighting, True))
    return stream


def _order(entry: tuple[Sighting, bool]) -> tuple[object, ...]:
    s, via = entry
    return (s.at, via, s.place, s.step, s.source, s.direction or "", s.subject)


def _intervals(subject: str, stream: list[tuple[Sighting, bool]]) -> tuple[CustodyInterval, ...]:
    ordered = sorted(stream, key=_order)
    out: list[CustodyInterval] = []
    for index, (s, via) in enumerate(ordered):
        following = ordered[index + 1][0] if index + 1 < len(ordered) else None
        basis = Basis.VIA_PARENT if via else Basis.OBSERVED
        if s.departs and not _returned(s, following):
            _append(out, CustodyInterval(subject, s.place.zone, s.at, s.at, basis))
            if following is not None and following.place.truck and following.at > s.at:
                zone = following.place.zone
                _append(out, CustodyInterval(subject, zone, s.at, following.at, Basis.INFERRED))
            continue
        end = following.at if following is not None else None
        _append(out, CustodyInterval(subject, s.place.zone, s.at, end, basis))
    return tuple(out)


def _returned(departure: Sighting, following: Sighting | None) -> bool:
    """True if the next sighting is back at the departure's site, off any truck: load undone."""
    if following is None or following.place.truck:
        return False
    return following.place.site == departure.place.site


def _append(out: list[CustodyInterval], interval: CustodyInterval) -> None:
    """Append, merging with the previous interval when it continues in the same way."""
    if out:
        last = out[-1]
        if (last.zone, last.basis, last.end) == (interval.zone, interval.basis, interval.start):
            out[-1] = CustodyInterval(last.subject, last.zone, last.start, interval.end, last.basis)
            return
    out.append(interval)
