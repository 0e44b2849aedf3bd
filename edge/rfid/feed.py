"""One reader's pipeline: raw payloads -> tag reads -> read points -> debounced observations.

Pure and single-threaded (the service holds a lock around it); the caller passes the time a
payload arrived (UTC) and the monotonic clock in. Every rejected read is counted by reason
and logged at 1, 10, 100, ... occurrences, so a chattering reader cannot fill the disk.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge.config import Reader, ReadPoint
from edge.rfid.debounce import Debouncer
from edge.rfid.decode import Rejected, TagRead, from_json, from_line, json_documents, json_records
from edge.rfid.profiles import ReaderProfile
from edge.wire import Observation

log = logging.getLogger(__name__)

Parser = Callable[[ReaderProfile, Any, datetime], TagRead]


class ReaderFeed:
    """Turns what one reader sends into observations; counts what it cannot use."""

    def __init__(self, reader: Reader, profile: ReaderProfile | None):
        self.reader = reader
        self.profile = profile
        self.debouncer = Debouncer(reader.window_s, reader.max_pass_s)
        self.errors: Counter[str] = Counter()  # reason -> count
        self.reads = 0  # raw reads counted at a read point
        self.undecodable = 0  # observations of EPCs that are not SGTIN-96 or SSCC-96
        self._points = {port: p for p in reader.read_points for port in p.ports}
        self._anywhere = reader.read_points[0] if len(reader.read_points) == 1 else None

    def payload(self, data: bytes, received: datetime, now: float) -> list[Observation]:
        """A body, message or line from the reader -> the observations closed meanwhile.

        Raises Rejected (already counted) when the payload as a whole is unusable.
        """
        profile = self.profile
        if profile is None:
            raise ValueError(f"reader {self.reader.id} has no profile to parse its output")
        items: list[tuple[Parser, Any]]
        if profile.format == "line":
            items = [(from_line, line) for line in data.splitlines() if line.strip()]
        else:
            try:
                documents, bad = json_documents(data)
            except Rejected as exc:
                self.problem(str(exc), _snippet(data))
                raise
            for _ in range(bad):
                self.problem("bad_json", "(a line of an NDJSON body)")
            items = [(from_json, r) for d in documents for r in json_records(profile, d)]
        reads: list[TagRead] = []
        for parse, raw in items:
            try:
                reads.append(parse(profile, raw, received))
            except Rejected as exc:
                self.problem(str(exc), _snippet(raw))
        return self.tag_reads(reads, now)

    def tag_reads(self, reads: list[TagRead], now: float) -> list[Observation]:
        """Count parsed reads at their read points; returns observations closed meanwhile."""
        closed: list[Observation] = []
        for read in reads:
            point = self.point_for(read.antenna)
            if point is None:
                self.problem("unknown_antenna", f"antenna {read.antenna} of tag {read.epc}")
                continue
            self.reads += 1
            closed += self.debouncer.add(point, read, now)
        return self._checked(closed)

    def point_for(self, antenna: int | None) -> ReadPoint | None:
        """The read point an antenna port belongs to."""
        if self._anywhere is not None and not self._anywhere.ports:
            return self._anywhere
        if antenna is None:
            return self._anywhere
        return self._points.get(antenna)

    def expire(self, now: float) -> list[Observation]:
        return self._checked(self.debouncer.expire(now))

    def flush(self) -> list[Observation]:
        return self._checked(self.debouncer.flush())

    def problem(self, reason: str, detail: str = "") -> None:
        """Count one problem with this reader; log the 1st, 10th, 100th, ... of each kind."""
        self.errors[reason] += 1
        count = self.errors[reason]
        if str(count).rstrip("0") == "1":
            log.warning("reader %s: %s (%d so far): %s", self.reader.id, reason, count, detail)

    def _checked(self, observations: list[Observation]) -> list[Observation]:
        for observation in observations:
            if observation.id_uri is None:
                self.undecodable += 1
        return observations


def _snippet(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 120 else text[:117] + "..."
