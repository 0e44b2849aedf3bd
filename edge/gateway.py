"""Wires one gateway process: config -> poller -> buffer -> publisher, plus heartbeats.

Each poll cycle is one buffer transaction: the readings and any local-alarm events they
caused. The local alarm is evaluated here, on the gateway, so it works with the cloud
unreachable.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from edge import broker_login, wire
from edge.alarm import AlarmChange, AlarmRule, LocalAlarm
from edge.alarm_output import CoilOutput
from edge.buffer import Buffer
from edge.config import LoadedGateway
from edge.host import Systemd, clock_synchronised, disk_free_bytes
from edge.poller import ModbusDevice, PolledValue, Poller
from edge.publisher import Publisher
from edge.rfid import RfidService

log = logging.getLogger(__name__)


def reading_bodies(polled: list[PolledValue]) -> list[str]:
    return [
        wire.encode_reading_body(s.sensor, s.quantity, s.value, s.unit, s.quality, s.taken_at)
        for s in polled
    ]


class Gateway:
    """A running gateway: polls on a fixed cadence, buffers, publishes, reports health."""

    def __init__(
        self, loaded: LoadedGateway, data_dir: Path, broker: wire.BrokerAddress | None = None
    ):
        self.loaded = loaded
        cfg = loaded.config
        self.data_dir = data_dir
        settings = broker_login.settings_for(cfg.mqtt, broker)
        self.broker = broker_login.address(settings)
        self.buffer = Buffer(data_dir / cfg.buffer.file, max_records=loaded.buffer_cap())
        self.poller = Poller([ModbusDevice(d, loaded.maps[d.id]) for d in cfg.devices])
        self.publisher = Publisher(
            self.buffer,
            settings,
            cfg.id,
            cfg.site.id,
            self._status_online,
            on_command=self._on_command,
            config_dir=loaded.path.parent,
        )
        self.alarm = LocalAlarm(
            [
                AlarmRule(z.id, z.low, z.high, z.alarm_delay_s, z.deadband, z.alarm_output)
                for z in cfg.zones
            ]
        )
        saved = self.buffer.load_state("local_alarm")
        if saved:
            self.alarm.restore(json.loads(saved))
        self.outputs = {
            o.id: CoilOutput(o, self.poller.shared_bus(o.transport)) for o in cfg.alarm_outputs
        }
        self.rfid = RfidService.from_gateway(loaded, self._observed)
        self.systemd = Systemd()
        self._zone_of = {d.id: d.zone for d in cfg.devices}
        self._stop = threading.Event()
        self._beat_now = threading.Event()
        self._started = time.monotonic()
        self.taken = 0
        self.seq_span: tuple[int, int] | None = None  # first and last reading seq this run

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
                read_points=self.loaded.read_point_infos(),
            )
        )

    def heartbeat(self) -> bytes:
        stats = self.buffer.stats()
        oldest = None if stats.oldest_created is None else time.time() - stats.oldest_created
        return wire.encode(
            wire.Heartbeat(
                v=wire.SCHEMA_VERSION,
                gateway=self.loaded.config.id,
                site=self.loaded.config.site.id,
                at=datetime.now(UTC),
                buffer_depth=stats.depth,
                oldest_unsent_age_s=None if oldest is None else round(oldest, 1),
                dropped_records=stats.dropped,
                poll_errors={**self.poller.errors, **self.rfid.errors},
                disk_free_bytes=disk_free_bytes(self.data_dir),
                clock_synchronised=clock_synchronised(),
                uptime_s=round(time.monotonic() - self._started, 1),
                inflight=self.publisher.inflight(),
                refused_envelopes=self.publisher.refused_envelopes,
                alarms=sorted(z for z, a in self.alarm.zones.items() if a.on),
                next_seq=stats.next_seq,
            )
        )

    def _observed(self, bodies: list[str]) -> None:
        """Closed RFID observations, from the RFID service's thread; the buffer assigns seq."""
        self.buffer.append("observation", bodies)
        self.publisher.notify()

    def _on_command(self, name: str, payload: bytes) -> None:
        """Commands from the cloud (cmd/#), delivered on paho's thread: flag, do not block."""
        log.info("command %r (%d bytes)", name, len(payload))
        if name == "ping":
            self._beat_now.set()
        elif name == "silence":
            self.alarm.silence()
        else:
            log.warning("unknown command %r ignored", name)

    def poll_once(self) -> int:
        """One poll cycle committed to the buffer in one transaction; returns readings taken."""
        polled = self.poller.cycle()
        now = datetime.now(UTC)
        temperatures: dict[str, list[float]] = {}
        for s in polled:
            if s.quantity == "temperature" and s.quality is wire.Quality.OK and s.value is not None:
                temperatures.setdefault(self._zone_of[s.sensor], []).append(s.value)
        events = [_alarm_event(change) for change in self.alarm.observe(temperatures, now)]
        if self.alarm.dirty:
            self.buffer.save_state("local_alarm", json.dumps(self.alarm.snapshot()))
        events += self._drive_outputs(now)
        spans = self.buffer.append_many({"reading": reading_bodies(polled), "event": events})
        if "reading" in spans:
            first = spans["reading"][0] if self.seq_span is None else self.seq_span[0]
            self.seq_span = (first, spans["reading"][1])
            self.taken += len(polled)
        self.publisher.notify()
        return len(polled)

    def _drive_outputs(self, now: datetime) -> list[str]:
        events = []
        for output_id, on in self.alarm.outputs().items():
            output = self.outputs[output_id]
            was_failing = output.failing
            if output.drive(on) is False and not was_failing:
                events.append(
                    wire.encode_body(
                        wire.GatewayEvent(
                            seq=0,
                            type="alarm_output_failed",
                            at=now,
                            detail=f"alarm output {output_id} could not be set "
                            f"{'on' if on else 'off'}",
                        )
                    )
                )
        return events

    def run(self) -> None:
        """Poll on a fixed cadence until stop() is called."""
        cfg = self.loaded.config
        log.info(
            "gateway %s at site %s: %d devices, broker %s, buffer %s (next seq %d)",
            cfg.id,
            cfg.site.id,
            len(cfg.devices),
            self.broker.url,
            self.buffer.path,
            self.buffer.stats().next_seq,
        )
        self.publisher.start(self.broker.host, self.broker.port)
        self.rfid.start()
        self.systemd.notify("READY=1")
        next_poll = time.monotonic()
        next_beat = next_poll + cfg.mqtt.heartbeat_s
        fed = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_poll:
                self.poll_once()
                # Fixed cadence: a slow cycle is not made up by bursts.
                next_poll = max(next_poll + cfg.poll_interval_s, time.monotonic())
            if now - fed >= 1.0:
                # Fed by this loop only: a poll cycle that hangs starves it and systemd restarts.
                self.systemd.notify("WATCHDOG=1")
                fed = now
            if now >= next_beat or self._beat_now.is_set():
                self._beat_now.clear()
                self.publisher.publish_now("heartbeat", self.heartbeat())
                next_beat = now + cfg.mqtt.heartbeat_s
            wait = min(next_poll, next_beat) - time.monotonic()
            if self._beat_now.wait(max(0.0, min(wait, 0.5))):
                continue
        self.systemd.notify("STOPPING=1")
        self._shutdown()

    def stop(self) -> None:
        self._stop.set()
        self._beat_now.set()

    def _shutdown(self) -> None:
        log.info(
            "stopping: %d readings taken this run, seq span %s, %d envelopes in flight",
            self.taken,
            self.seq_span,
            self.publisher.inflight(),
        )
        self.rfid.stop()  # closes open passes and hands them over before the buffer closes
        self.publisher.stop()
        self.poller.close()
        for output in self.outputs.values():
            output.close()
        self.buffer.close()


def _alarm_event(change: AlarmChange) -> str:
    verb = "above" if change.limit is not None and change.value > change.limit else "below"
    since = wire.utc_iso(change.since)
    detail = (
        f"out of range since {since}: {change.value:g} C {verb} {change.limit:g} C"
        if change.on
        else f"back in range at {change.value:g} C after an alarm since {since}"
    )
    return wire.encode_body(
        wire.GatewayEvent(
            seq=0,
            type="local_alarm" if change.on else "local_alarm_clear",
            at=change.at,
            zone=change.zone,
            value=change.value,
            limit=change.limit,
            detail=detail,
        )
    )
