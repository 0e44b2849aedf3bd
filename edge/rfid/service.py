"""The gateway's RFID service: reader adapters in, closed observations out as buffer bodies.

Adapters run on their own threads and hand raw payloads in; one lock guards the feeds. One
ticker thread closes quiet passes and calls `on_observations` (never an adapter thread); a
batch the callback fails to take is kept and offered again on the next tick.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.config import (
    HttpReaderTransport,
    LoadedGateway,
    MqttReaderTransport,
    Reader,
    ReadPoint,
    SerialReaderTransport,
)
from edge.rfid.decode import Rejected, TagRead
from edge.rfid.feed import ReaderFeed
from edge.rfid.http_push import HttpReceiver
from edge.rfid.mqtt_sub import MqttSubscriber
from edge.rfid.profiles import ReaderProfile, load_reader_profiles
from edge.rfid.serial_line import SerialLineReader
from edge.rfid.simulator import SimulatedReader
from edge.wire import Observation, encode_body

log = logging.getLogger(__name__)

ObservationSink = Callable[[list[str]], None]  # wire bodies, for Buffer.append("observation", ...)
Adapter = HttpReceiver | MqttSubscriber | SerialLineReader | SimulatedReader


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LoadedReader:
    """A reader's config with its profile loaded (None for a simulated reader)."""

    config: Reader
    profile: ReaderProfile | None


class RfidService:
    """Runs a gateway's readers; hands closed observations to `on_observations` as bodies."""

    def __init__(
        self,
        readers: Sequence[LoadedReader],
        on_observations: ObservationSink,
        *,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        tick_s: float = 0.25,
        max_undelivered: int = 100_000,
    ):
        self.on_observations = on_observations
        self.clock = clock
        self.monotonic = monotonic
        self.tick_s = tick_s
        self.max_undelivered = max_undelivered
        self.delivered = 0
        self.undelivered_dropped = 0
        self._failing = False
        self._feeds = {r.config.id: ReaderFeed(r.config, r.profile) for r in readers}
        self.adapters: dict[str, Adapter] = {r.config.id: self._adapter(r) for r in readers}
        self._lock = threading.Lock()
        self._closed: list[Observation] = []  # closed, not yet taken by on_observations
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="rfid-ticker", daemon=True)

    @classmethod
    def from_gateway(
        cls, loaded: LoadedGateway, on_observations: ObservationSink, **options: Any
    ) -> RfidService:
        """The service for a gateway's `readers:`; loads their profiles (ConfigError if bad)."""
        profiles = load_reader_profiles(loaded)
        readers = [LoadedReader(r, profiles[r.id]) for r in loaded.config.readers]
        return cls(readers, on_observations, **options)

    def _adapter(self, reader: LoadedReader) -> Adapter:
        rid, transport = reader.config.id, reader.config.transport
        deliver = functools.partial(self._payload, rid)
        problem = functools.partial(self._problem, rid)
        if isinstance(transport, HttpReaderTransport):
            return HttpReceiver(rid, transport, deliver, problem)
        if isinstance(transport, MqttReaderTransport):
            return MqttSubscriber(rid, transport, deliver, problem)
        if isinstance(transport, SerialReaderTransport):
            return SerialLineReader(rid, transport, deliver, problem)
        point = reader.config.read_points[0]
        return SimulatedReader(
            rid, transport, point, functools.partial(self._reads, rid), self.clock
        )

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start every reader adapter and the ticker."""
        for adapter in self.adapters.values():
            adapter.start()
        self._ticker.start()

    def wait_ready(self, timeout: float) -> bool:
        """Whether every adapter is listening, subscribed or open within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        return all(
            a.ready.wait(max(0.0, deadline - time.monotonic())) for a in self.adapters.values()
        )

    def stop(self) -> None:
        """Stop the adapters, close every open pass and hand it over (once)."""
        if self._stop.is_set():
            return
        for rid, adapter in self.adapters.items():
            try:
                adapter.stop()
            except Exception:
                log.exception("reader %s did not stop cleanly", rid)
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(5)
        with self._lock:
            for feed in self._feeds.values():
                self._closed += feed.flush()
        self._hand_over()
        if self._closed:
            log.error("stopping with %d observations not handed over", len(self._closed))

    # --- state ------------------------------------------------------------------------------

    @property
    def read_points(self) -> list[ReadPoint]:
        """Every read point served, with its zone and business step (for the status message)."""
        return [p for feed in self._feeds.values() for p in feed.reader.read_points]

    @property
    def errors(self) -> dict[str, int]:
        """Problems per reader, as {"reader:reason": count} (for the heartbeat)."""
        with self._lock:
            counts = {
                f"{rid}:{reason}": n
                for rid, feed in self._feeds.items()
                for reason, n in feed.errors.items()
            }
        if self.undelivered_dropped:
            counts["rfid:undelivered_dropped"] = self.undelivered_dropped
        return counts

    def stats(self) -> dict[str, int]:
        """Raw reads counted, passes open, observations handed over, undecodable EPCs."""
        with self._lock:
            return {
                "reads": sum(f.reads for f in self._feeds.values()),
                "open_passes": sum(len(f.debouncer) for f in self._feeds.values()),
                "undecodable": sum(f.undecodable for f in self._feeds.values()),
                "delivered": self.delivered,
                "pending": len(self._closed),
            }

    # --- from the adapters' threads ---------------------------------------------------------

    def _payload(self, rid: str, data: bytes) -> bool:
        received, now = self.clock(), self.monotonic()
        try:
            with self._lock:
                self._closed += self._feeds[rid].payload(data, received, now)
        except Rejected:
            return False
        except Exception:  # a bug must not take a reader's thread down with it
            log.exception("reader %s: payload not processed", rid)
            self._problem(rid, "internal_error", "")
            return False
        return True

    def _reads(self, rid: str, reads: list[TagRead]) -> None:
        with self._lock:
            self._closed += self._feeds[rid].tag_reads(reads, self.monotonic())

    def _problem(self, rid: str, reason: str, detail: str) -> None:
        with self._lock:
            self._feeds[rid].problem(reason, detail)

    # --- the ticker -------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:
                log.exception("rfid tick failed")

    def tick(self) -> int:
        """Close quiet passes and hand closed observations over; returns how many went."""
        now = self.monotonic()
        with self._lock:
            for feed in self._feeds.values():
                self._closed += feed.expire(now)
            excess = len(self._closed) - self.max_undelivered
            if excess > 0:
                del self._closed[:excess]
                self.undelivered_dropped += excess
                log.error("on_observations keeps failing: dropped the %d oldest", excess)
        return self._hand_over()

    def _hand_over(self) -> int:
        with self._lock:
            batch, self._closed = self._closed, []
        if not batch:
            return 0
        try:
            self.on_observations([encode_body(o) for o in batch])
        except Exception:
            if not self._failing:  # once per outage, not once per tick
                log.exception("could not hand %d observations over; retrying", len(batch))
            self._failing = True
            with self._lock:
                self._closed[:0] = batch
            return 0
        if self._failing:
            log.info("observations handed over again")
        self._failing = False
        self.delivered += len(batch)
        return len(batch)
