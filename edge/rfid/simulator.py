"""Simulated readers: cases and pallets passing a read point, for the demo and the tests.

`portal_pass` is pure (seeded randomness, times from `start`); `SimulatedReader` plays passes
in real time on a thread, alternately in and out, one every `every_s`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Literal

from edge.config import ReadPoint, SimulatedReaderTransport
from edge.rfid.decode import TagRead


def portal_pass(
    epcs: Sequence[str],
    point: ReadPoint,
    start: datetime,
    direction: Literal["in", "out"],
    pass_s: float = 3.0,
    reads_per_s: float = 20.0,
    rng: random.Random | None = None,
) -> list[TagRead]:
    """Raw reads of tags crossing a read point, oldest first: going in, outer antenna first."""
    rng = rng or random.Random(0)
    first: int | None
    second: int | None
    if point.outer_antenna is not None and point.inner_antenna is not None:
        first, second = point.outer_antenna, point.inner_antenna
        if direction == "out":
            first, second = second, first
    else:
        first = second = min(point.ports, default=None)
    reads = []
    count = max(4, round(pass_s * reads_per_s))
    for epc in epcs:
        offset = rng.uniform(0, pass_s * 0.2)  # tags on a pallet do not cross all at once
        for i in range(count):
            share = i / count
            if i and rng.random() < 0.1:  # reads get lost; never the first
                continue
            antenna = first if share < 0.4 or (share <= 0.6 and i % 2) else second
            rssi = -70 + 20 * math.sin(math.pi * share) + rng.gauss(0, 1.5)
            at = start + timedelta(seconds=offset + pass_s * 0.8 * share)
            reads.append(TagRead(epc, antenna, round(rssi, 1), at))
    return sorted(reads, key=lambda r: r.at)


class SimulatedReader:
    """Plays a pass of the configured EPCs through a read point every `every_s`."""

    def __init__(
        self,
        reader_id: str,
        transport: SimulatedReaderTransport,
        point: ReadPoint,
        deliver: Callable[[list[TagRead]], None],
        clock: Callable[[], datetime],
    ):
        self.reader_id = reader_id
        self.transport = transport
        self.point = point
        self.deliver = deliver
        self.clock = clock
        self.ready = threading.Event()
        self.passes = 0
        self._stop = threading.Event()
        self._rng = random.Random(reader_id)
        self._thread = threading.Thread(target=self._run, name=f"rfid-sim-{reader_id}")

    def start(self) -> None:
        self._thread.start()
        self.ready.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        t = self.transport
        while not self._stop.is_set():
            began, start = time.monotonic(), self.clock()
            direction: Literal["in", "out"] = "in" if self.passes % 2 == 0 else "out"
            reads = portal_pass(
                t.epcs, self.point, start, direction, t.pass_s, t.reads_per_s, self._rng
            )
            self.passes += 1
            while reads and not self._stop.is_set():
                due = start + timedelta(seconds=time.monotonic() - began)
                batch = [r for r in reads if r.at <= due]
                if batch:
                    reads = reads[len(batch) :]
                    self.deliver(batch)
                self._stop.wait(0.05)
            self._stop.wait(max(0.0, began + t.every_s - time.monotonic()))
