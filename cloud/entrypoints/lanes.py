"""Deliveries waiting to be decoded, in one lane per gateway, taken in turn.

A gateway flooding the worker fills its own lane only: the decoder takes one delivery from
each gateway with any waiting in turn, so another gateway's reading waits behind at most one
delivery of each other gateway, not behind the whole flood (decision 0028). Within a lane
the order is arrival order (a status before the readings that follow it, decision 0017).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Lanes(Generic[T]):
    """A thread-safe queue of items per key, taken round-robin across keys."""

    def __init__(self) -> None:
        self._lanes: dict[object, deque[T]] = {}
        self._turns: deque[object] = deque()  # keys with items waiting, in turn order
        self._ready = threading.Condition()

    def put(self, key: object, item: T) -> None:
        with self._ready:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = deque()
                self._turns.append(key)
            lane.append(item)
            self._ready.notify()

    def get(self, timeout: float = 0.0) -> T | None:
        """The next item in turn, waiting up to `timeout` seconds; None if none came."""
        with self._ready:
            if not self._turns and (timeout <= 0 or not self._ready.wait(timeout)):
                return None
            if not self._turns:
                return None
            key = self._turns.popleft()
            lane = self._lanes[key]
            item = lane.popleft()
            if lane:
                self._turns.append(key)
            else:
                del self._lanes[key]
            return item

    def __len__(self) -> int:
        with self._ready:
            return sum(len(lane) for lane in self._lanes.values())
