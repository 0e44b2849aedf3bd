"""Publishes the buffer over MQTT at QoS 1 and deletes records only after the broker's PUBACK.

paho is handed at most `inflight_window` envelopes at a time: its own QoS 1 queue wraps at
65,535 message ids and can then lose messages without an error (paho.mqtt.python #377), so
the durable buffer is the queue and paho only a window onto it. An envelope not acknowledged
within `ack_timeout_s` while connected is published again; the cloud deduplicates on
(gateway, seq), so a repeat costs bandwidth, never correctness.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge import wire
from edge.buffer import Buffer
from edge.config import MqttSettings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _InFlight:
    kind: str
    first: int
    last: int
    sent: float


class Publisher:
    """Drains the buffer to the broker; one instance per gateway process."""

    def __init__(
        self,
        buffer: Buffer,
        settings: MqttSettings,
        gateway: str,
        site: str,
        status_online: Callable[[], bytes],
    ):
        self.buffer = buffer
        self.settings = settings
        self.gateway = gateway
        self.site = site
        self._status_online = status_online
        self._readings_topic = wire.topic(site, gateway, "readings")
        self._status_topic = wire.topic(site, gateway, "status")
        self._inflight: dict[int, _InFlight] = {}
        self._acked: deque[int] = deque()  # mids from paho's network thread
        self._cursor = 0  # last seq handed to paho
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.published_envelopes = 0
        self.client = self._make_client()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def _make_client(self) -> mqtt.Client:
        version = (
            MQTTProtocolVersion.MQTTv5
            if self.settings.protocol == "5"
            else MQTTProtocolVersion.MQTTv311
        )
        kwargs = {} if version == MQTTProtocolVersion.MQTTv5 else {"clean_session": False}
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"gw-{self.gateway}",
            protocol=version,
            **kwargs,
        )
        # paho's own window is wider than ours so it never queues what we hand it.
        client.max_inflight_messages_set(self.settings.inflight_window * 4)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        offline = wire.StatusMessage(
            v=wire.SCHEMA_VERSION, gateway=self.gateway, site=self.site, state="offline"
        )
        client.will_set(self._status_topic, wire.encode(offline), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    # --- paho callbacks (network thread): record and wake, nothing more --------------------

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("broker refused connection: %s", reason)
            return
        log.info("connected to broker")
        client.publish(self._status_topic, self._status_online(), qos=1, retain=True)
        self.connected.set()
        self._wake.set()

    def _on_disconnect(
        self, _c: object, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if self.connected.is_set() and not self._stop.is_set():
            log.warning("disconnected from broker: %s", reason)
        self.connected.clear()

    def _on_publish(self, _c: object, _u: object, mid: int, _r: object, _p: object) -> None:
        self._acked.append(mid)
        self._wake.set()

    # --- the drain loop (own thread) ------------------------------------------------------

    def start(self, host: str, port: int) -> None:
        self.client.connect_async(host, port, keepalive=self.settings.keepalive_s)
        self.client.loop_start()
        self._thread.start()

    def notify(self) -> None:
        """New records are in the buffer."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.25)
            self._wake.clear()
            try:
                self._settle_acks()
                if self.connected.is_set():
                    self._resend_expired()
                    while len(self._inflight) < self.settings.inflight_window and self._send_next():
                        pass
            except Exception:  # the loop must outlive any single failure
                log.exception("publisher loop error; retrying")
                time.sleep(1)
        self._settle_acks()

    def _settle_acks(self) -> None:
        spans = []
        while self._acked:
            entry = self._inflight.pop(self._acked.popleft(), None)
            if entry is not None:
                spans.append((entry.kind, entry.first, entry.last))
        if spans:
            self.buffer.acknowledge(spans)

    def _send_next(self) -> bool:
        records = self.buffer.pending("reading", self._cursor, self.settings.records_per_message)
        if not records:
            return False
        first, last = records[0][0], records[-1][0]
        self._publish("reading", first, last, records)
        self._cursor = last
        return True

    def _publish(self, kind: str, first: int, last: int, records: list[tuple[int, str]]) -> None:
        payload = wire.assemble_readings(self.gateway, self.site, records, datetime.now(UTC))
        info = self.client.publish(self._readings_topic, payload, qos=1)
        self._inflight[info.mid] = _InFlight(kind, first, last, time.monotonic())
        self.published_envelopes += 1

    def _resend_expired(self) -> None:
        deadline = time.monotonic() - self.settings.ack_timeout_s
        for mid, entry in list(self._inflight.items()):
            if entry.sent < deadline:
                del self._inflight[mid]
                records = [
                    r
                    for r in self.buffer.pending(
                        entry.kind, entry.first - 1, entry.last - entry.first + 1
                    )
                    if r[0] <= entry.last
                ]
                if records:
                    log.warning(
                        "no PUBACK for seq %d..%d; publishing again", entry.first, entry.last
                    )
                    self._publish(entry.kind, entry.first, entry.last, records)

    def inflight(self) -> int:
        return len(self._inflight)

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Send what the buffer holds while connected (up to a deadline), then go offline."""
        deadline = time.monotonic() + drain_timeout_s
        while (
            (self._inflight or self.buffer.depth)
            and self.connected.is_set()
            and time.monotonic() < deadline
        ):
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        if self.connected.is_set():
            offline = wire.StatusMessage(
                v=wire.SCHEMA_VERSION,
                gateway=self.gateway,
                site=self.site,
                state="offline",
                at=datetime.now(UTC),
            )
            self.client.publish(
                self._status_topic, wire.encode(offline), qos=1, retain=True
            ).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
