"""Debounce: dozens of raw reads a second per tag -> one observation per tag and pass.

A pass is keyed by (read point, EPC). It closes when the tag has not been read for `window_s`
by the gateway's monotonic clock (a wall-clock step cannot hold passes open), when a read comes
more than `window_s` after the pass's last read by read time (a reader replaying a backlog),
or when it has been open `max_pass_s` (a pallet parked at the door is still reported).
Direction comes from a portal's antenna order: first seen outer, then inner = in.
Pure: the caller passes `now` (monotonic seconds) in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from edge.config import ReadPoint
from edge.gs1 import EpcError, Sgtin, decode_epc
from edge.rfid.decode import TagRead
from edge.wire import Observation


@dataclass(frozen=True, slots=True)
class TagIdentity:
    """The GS1 keys an EPC carries; all None when it is not SGTIN-96 or SSCC-96."""

    id_uri: str | None = None
    gtin: str | None = None
    serial: str | None = None
    sscc: str | None = None


@functools.lru_cache(maxsize=8192)
def identify(epc: str) -> TagIdentity:
    """Decode an EPC: SGTIN-96 -> gtin, serial, id_uri; SSCC-96 -> sscc, id_uri."""
    try:
        tag = decode_epc(epc)
    except EpcError:
        return TagIdentity()
    if isinstance(tag, Sgtin):
        return TagIdentity(tag.pure_identity_uri, gtin=tag.gtin, serial=tag.serial)
    return TagIdentity(tag.pure_identity_uri, sscc=tag.sscc)


@dataclass
class _Pass:
    point: ReadPoint
    epc: str
    first_seen: datetime
    last_seen: datetime
    opened: float
    touched: float
    count: int = 0
    peak_rssi: float | None = None
    antenna: int | None = None  # of the strongest read; of the first read while no RSSI
    # antenna -> (read time, arrival order) of its first read; arrival breaks ties, as the
    # reads of one batch carry one time when the gateway stamps them
    first_on: dict[int, tuple[datetime, int]] = field(default_factory=dict)

    def add(self, read: TagRead, now: float) -> None:
        self.count += 1
        self.first_seen = min(self.first_seen, read.at)
        self.last_seen = max(self.last_seen, read.at)
        self.touched = now
        if read.antenna is not None:
            earlier = self.first_on.get(read.antenna)
            if earlier is None or read.at < earlier[0]:
                self.first_on[read.antenna] = (read.at, self.count)
        if read.rssi is not None and (self.peak_rssi is None or read.rssi > self.peak_rssi):
            self.peak_rssi, self.antenna = read.rssi, read.antenna
        elif self.peak_rssi is None and self.antenna is None:
            self.antenna = read.antenna

    def direction(self) -> Literal["in", "out"] | None:
        outer, inner = self.point.outer_antenna, self.point.inner_antenna
        if outer not in self.first_on or inner not in self.first_on:
            return None
        first_outer, first_inner = self.first_on[outer], self.first_on[inner]
        return "in" if first_outer < first_inner else "out"

    def observation(self) -> Observation:
        ids = identify(self.epc)
        return Observation(
            seq=0,
            epc=self.epc,
            id_uri=ids.id_uri,
            gtin=ids.gtin,
            serial=ids.serial,
            sscc=ids.sscc,
            read_point=self.point.id,
            antenna=self.antenna,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            count=self.count,
            peak_rssi=self.peak_rssi,
            direction=self.direction(),
        )


class Debouncer:
    """Raw tag reads at read points -> closed observations."""

    def __init__(self, window_s: float, max_pass_s: float = 300.0, max_open: int = 100_000):
        self.window_s = window_s
        self.max_pass_s = max_pass_s
        self.max_open = max_open  # a bound on memory: past it the oldest pass closes early
        self._open: dict[tuple[str, str], _Pass] = {}

    def __len__(self) -> int:
        return len(self._open)

    def add(self, point: ReadPoint, read: TagRead, now: float) -> list[Observation]:
        """Count one read; returns the observations it closed (a gap in read time, or a cap)."""
        key = (point.id, read.epc)
        closed = []
        current = self._open.get(key)
        if current is not None and (read.at - current.last_seen).total_seconds() > self.window_s:
            closed.append(self._close(key))
            current = None
        if current is None:
            if len(self._open) >= self.max_open:
                closed.append(self._close(next(iter(self._open))))
            current = self._open[key] = _Pass(point, read.epc, read.at, read.at, now, now)
        current.add(read, now)
        return closed

    def expire(self, now: float) -> list[Observation]:
        """Close the passes whose tag went quiet for window_s, or that are open max_pass_s."""
        due = [
            key
            for key, p in self._open.items()
            if now - p.touched >= self.window_s or now - p.opened >= self.max_pass_s
        ]
        return [self._close(key) for key in due]

    def flush(self) -> list[Observation]:
        """Close every open pass (on shutdown)."""
        return [self._close(key) for key in list(self._open)]

    def _close(self, key: tuple[str, str]) -> Observation:
        return self._open.pop(key).observation()
