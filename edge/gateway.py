"""Wires one gateway process: config -> poller -> buffer -> publisher, plus heartbeats."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from edge import wire
from edge.buffer import Buffer
from edge.config import LoadedGateway
from edge.poller import ModbusDevice, Poller, Sample
from edge.publisher import Publisher

log = logging.getLogger(__name__)


def reading_bodies(samples: list[Sample]) -> list[str]:
    return [
        wire.encode_reading_body(s.sensor, s.quantity, s.value, s.unit, s.quality, s.taken_at)
        for s in samples
    ]


class Gateway:
    """A running gateway: polls on a fixed cadence, buffers, publishes, reports health."""

    def __init__(
        self, loaded: LoadedGateway, data_dir: Path, broker: wire.BrokerAddress | None = None
    ):
        self.loaded = loaded
        cfg = loaded.config
        self.data_dir = data_dir
        self.broker = broker or wire.BrokerAddress(cfg.mqtt.host, cfg.mqtt.port)
        self.buffer = Buffer(data_dir / cfg.buffer.file, max_records=cfg.buffer.max_records)
        self.poller = Poller([ModbusDevice(d, loaded.maps[d.id]) for d in cfg.devices])
        self.publisher = Publisher(self.buffer, cfg.mqtt, cfg.id, cfg.site.id, self._status_online)
        self._stop = threading.Event()
        self.taken = 0
        self.seq_span: tuple[int, int] | None = None  # first and last seq committed this run

    def _status_online(self) -> bytes:
        return wire.encode(
            wire.StatusMessage(
                v=wire.SCHEMA_VERSION,
                gateway=self.loaded.config.id,
                site=self.loaded.config.site.id,
                state="online",
                at=datetime.now(UTC),
                site_info=self.loaded.site_info(),
                zones=self.loaded.zone_infos(),
                sensors=self.loaded.sensor_infos(),
            )
        )

    def heartbeat(self) -> bytes:
        stats = self.buffer.stats()
        return wire.encode(
            wire.Heartbeat(
                v=wire.SCHEMA_VERSION,
                gateway=self.loaded.config.id,
                site=self.loaded.config.site.id,
                at=datetime.now(UTC),
                buffer_depth=stats.depth,
                oldest_unsent_age_s=None
                if stats.oldest_created is None
                else round(time.time() - stats.oldest_created, 1),
                dropped_records=stats.dropped,
                poll_errors=dict(self.poller.errors),
            )
        )

    def poll_once(self) -> int:
        """One poll cycle committed to the buffer in one transaction; returns readings taken."""
        samples = self.poller.cycle()
        span = self.buffer.append("reading", reading_bodies(samples))
        if span is not None:
            first = span[0] if self.seq_span is None else self.seq_span[0]
            self.seq_span = (first, span[1])
            self.taken += len(samples)
        self.publisher.notify()
        return len(samples)

    def run(self) -> None:
        """Poll on a fixed cadence until stop() is called."""
        cfg = self.loaded.config
        log.info(
            "gateway %s at site %s: %d devices, broker %s:%d, buffer %s (next seq %d)",
            cfg.id,
            cfg.site.id,
            len(cfg.devices),
            self.broker.host,
            self.broker.port,
            self.buffer.path,
            self.buffer.stats().next_seq,
        )
        self.publisher.start(self.broker.host, self.broker.port)
        heartbeat_topic = wire.topic(cfg.site.id, cfg.id, "heartbeat")
        next_poll = time.monotonic()
        next_beat = next_poll + cfg.mqtt.heartbeat_s
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_poll:
                self.poll_once()
                # Fixed cadence: a slow cycle is not made up by bursts.
                next_poll = max(next_poll + cfg.poll_interval_s, time.monotonic())
            if now >= next_beat and self.publisher.connected.is_set():
                self.publisher.client.publish(heartbeat_topic, self.heartbeat(), qos=1)
                next_beat = now + cfg.mqtt.heartbeat_s
            self._stop.wait(max(0.0, min(next_poll, next_beat) - time.monotonic()))
        self._shutdown()

    def stop(self) -> None:
        self._stop.set()

    def _shutdown(self) -> None:
        log.info(
            "stopping: %d readings taken this run, seq span %s, %d envelopes in flight",
            self.taken,
            self.seq_span,
            self.publisher.inflight(),
        )
        self.publisher.stop()
        self.poller.close()
        self.buffer.close()
