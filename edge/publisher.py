"""Publishes the buffer over MQTT at QoS 1 and deletes records only after the broker's PUBACK.

paho keeps at most `inflight_window` envelopes in flight and is handed at most HANDOFF_WINDOWS
windows of them (the rest waits in its memory, sent from its own thread on the next PUBACK):
its QoS 1 queue wraps at 65,535 message ids and can then lose messages without an error
(paho.mqtt.python #377), so the durable buffer is the queue and paho only a window onto it.
An envelope not acknowledged within `ack_timeout_s` while connected is published again
(paho may also republish on reconnect, #492); the cloud deduplicates on (gateway, seq), so
a repeat costs bandwidth, never correctness. A PUBACK that refuses the message (MQTT 5
reason code >= 0x80, e.g. not authorised) is not an acknowledgement: the records stay and
are retried. Acknowledged records are deleted in batches (SETTLE_*): while a backlog drains,
publishing goes first and the deletes follow at most a second behind.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge import broker_login, wire
from edge.buffer import Buffer, Chunk
from edge.config import MqttSettings

log = logging.getLogger(__name__)

# Drain order: what the gateway decided (alarms) first, then measurements, then tag reads.
KIND_ORDER = ("event", "reading", "observation")
SETTLE_EVERY_S = 1.0  # acknowledged records are deleted at least this often
SETTLE_WINDOWS = 64  # or after this many windows of acknowledged envelopes
READ_AHEAD_WINDOWS = 2  # envelopes cut from the buffer ahead of the window, in windows
HANDOFF_WINDOWS = 2  # envelopes handed to paho and not yet acknowledged, in windows


def _drain_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


@dataclass(slots=True)
class _Envelope:
    """Records first..last of one kind (every one of that kind in between), as encoded parts."""

    kind: str
    first: int
    last: int
    count: int
    parts: list[bytes | memoryview]

    @property
    def records(self) -> bytes:
        return b"".join(self.parts)


@dataclass(slots=True)
class _InFlight:
    envelope: _Envelope
    sent: float


def envelopes(kind: str, chunks: list[Chunk], per_message: int) -> Iterator[_Envelope]:
    """Consecutive chunks of one kind cut into envelopes of `per_message` records.

    A chunk that does not fit whole is split at a record boundary; the buffer trims it when
    one part is acknowledged (docs/decisions/0010-buffer-chunks.md). The chunks are every
    chunk of `kind` in their seq range, so acknowledging (kind, first, last) deletes exactly
    what an envelope carried. Parts are views of the chunks: the payload is copied once.
    """
    parts: list[bytes | memoryview] = []
    count = first = 0
    for chunk in chunks:
        size, data, ends = chunk.last - chunk.first + 1, memoryview(chunk.data), chunk.ends
        start = 0
        while start < size:
            stop = min(start + per_message - count, size)
            if count:
                parts.append(b",")
            else:
                first = chunk.first + start
            parts.append(data[0 if start == 0 else ends[start - 1] + 1 : ends[stop - 1]])
            count += stop - start
            start = stop
            if count == per_message:
                yield _Envelope(kind, first, chunk.first + stop - 1, count, parts)
                parts, count = [], 0
    if parts:
        yield _Envelope(kind, first, chunks[-1].last, count, parts)


class Publisher:
    """Drains the buffer to the broker; one instance per gateway process."""

    def __init__(
        self,
        buffer: Buffer,
        settings: MqttSettings,
        gateway: str,
        site: str,
        status_online: Callable[[], bytes],
        on_command: Callable[[str, bytes], None] | None = None,
        config_dir: Path | None = None,
    ):
        self.buffer = buffer
        self.settings = settings
        self.gateway = gateway
        self.site = site
        self._status_online = status_online
        self._on_command = on_command
        self._config_dir = config_dir or Path(".")
        self._topics = {
            kind: wire.topic(site, gateway, ch) for kind, ch in wire.RECORD_CHANNELS.items()
        }
        self._status_topic = wire.topic(site, gateway, "status")
        self._command_prefix = f"{wire.TOPIC_ROOT}/{site}/{gateway}/cmd/"
        self._inflight: dict[int, _InFlight] = {}
        self._acked: deque[tuple[int, bool]] = deque()  # (mid, accepted) from paho's thread
        self._cursor = 0  # last seq read ahead from the buffer
        self._ready: deque[_Envelope] = deque()  # read, not yet sent
        self._unsettled: list[tuple[str, int, int]] = []  # acknowledged, not yet deleted
        self._settled_at = 0.0
        self._head, self._head_ms = b"", 0  # envelope head and the millisecond it is for
        self._wake = threading.Event()
        self._wake_after = 1  # PUBACKs that wake the drain loop: when paho is down to a window
        self._stop = threading.Event()
        self._attempts = 0
        self.connected = threading.Event()
        self._refused = False  # the broker's CONNACK refused the last attempt
        self.published_envelopes = 0
        self.refused_envelopes = 0
        self.acknowledged_records = 0  # records in envelopes the broker has acknowledged
        self._acknowledged = threading.Condition()
        self.client = self._make_client()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def _make_client(self) -> mqtt.Client:
        v5 = self.settings.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"gw-{self.gateway}",
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            # A persistent session: commands sent while the gateway is offline wait for it
            # (on MQTT 5 the session is kept by clean_start and its expiry, set on connect).
            clean_session=None if v5 else False,
        )
        # In flight at most a window; what is handed beyond it (one more window at most)
        # paho sends from its own thread as PUBACKs come in, as a bare publisher's would.
        client.max_inflight_messages_set(self.settings.inflight_window)
        client.max_queued_messages_set(0)
        self._set_reconnect_delay(client)
        if self.settings.tls is not None:
            client.tls_set_context(broker_login.tls_context(self.settings.tls, self._config_dir))
        if self.settings.username is not None:
            secret = broker_login.password(self.settings, self._config_dir)
            client.username_pw_set(self.settings.username, secret)
        offline = wire.StatusMessage(
            v=wire.SCHEMA_VERSION, gateway=self.gateway, site=self.site, state="offline"
        )
        client.will_set(self._status_topic, wire.encode(offline), qos=1, retain=True)
        client.enable_logger(logging.getLogger("paho.mqtt"))  # socket and TLS errors
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _set_reconnect_delay(self, client: mqtt.Client) -> None:
        """Exponential backoff with full jitter, so a fleet does not reconnect in lockstep."""
        low, high = self.settings.reconnect_min_s, self.settings.reconnect_max_s
        ceiling = min(high, low * 2 ** min(self._attempts, 16))
        delay = random.uniform(low, max(low, ceiling))
        # paho annotates the delays int but waits float seconds: the jitter needs a fraction
        client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]

    # --- paho callbacks (network thread): record and wake, nothing more --------------------

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("broker refused connection: %s; retrying", reason)
            self._refused = True  # the disconnect that follows says nothing more
            return
        log.info("connected to broker")
        self._attempts = 0
        self._set_reconnect_delay(client)
        client.subscribe(self._command_prefix + "#", qos=1)
        client.publish(self._status_topic, self._status_online(), qos=1, retain=True)
        self.connected.set()
        self._wake.set()

    def _on_connect_fail(self, client: mqtt.Client, _u: object) -> None:
        # Called while paho handles the failure: the TLS or socket error is the one in hand.
        log.warning(
            "cannot connect to the broker %s:%d: %s; retrying",
            self.settings.host,
            self.settings.port,
            sys.exc_info()[1] or "connection failed",
        )
        self._attempts += 1
        self._set_reconnect_delay(client)

    def _on_disconnect(
        self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        refused, self._refused = self._refused, False
        if self.connected.is_set() and not self._stop.is_set():
            log.warning("disconnected from broker: %s", reason)
        elif not (refused or self._stop.is_set()):  # TLS 1.3: a refused certificate shows only now
            log.warning(
                "cannot connect to the broker %s:%d: it closed the connection before accepting "
                "it (%s; this gateway's certificate refused or revoked?); retrying",
                self.settings.host,
                self.settings.port,
                reason,
            )
        self.connected.clear()
        self._attempts += 1
        self._set_reconnect_delay(client)

    def _on_publish(self, _c: object, _u: object, mid: int, reason: object, _p: object) -> None:
        accepted = not getattr(reason, "is_failure", False)
        self._acked.append((mid, accepted))
        # paho already sends what it was handed beyond the window: the drain thread is woken
        # once paho is down to about a window, not for every envelope.
        if len(self._acked) >= self._wake_after:
            self._wake.set()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if self._on_command is not None and msg.topic.startswith(self._command_prefix):
            self._on_command(msg.topic[len(self._command_prefix) :], bytes(msg.payload))

    # --- the drain loop (own thread) ------------------------------------------------------

    def start(self, host: str, port: int) -> None:
        v5 = self.settings.protocol == "5"
        properties = None
        if v5:
            # paho leaves Properties() unannotated
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 7 * 24 * 3600
        self.client.connect_async(
            host,
            port,
            keepalive=self.settings.keepalive_s,
            # MQTT 3.1.1 takes only the default: its session is set by clean_session
            clean_start=False if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
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
                    self._read_ahead()
                    self._resend_expired()
                    self._top_up()
                # Woken again when paho is down to its last window, or by the last PUBACK.
                outstanding = self._outstanding()
                self._wake_after = max(1, outstanding - self.settings.inflight_window)
                if not self._ready:  # nothing left to hand over: settle a window at a time
                    self._wake_after = max(1, min(self.settings.inflight_window, outstanding))
                if len(self._acked) >= self._wake_after:
                    self._wake.set()
            except Exception:  # the loop must outlive any single failure
                log.exception("publisher loop error; retrying")
                time.sleep(1)
        self._settle_acks(force=True)

    def _settle_acks(self, force: bool = False) -> None:
        """Free the window for every PUBACK now; delete the records in batches.

        A delete is an fsync'ed transaction: one per PUBACK would cap the drain at the
        disk's fsync rate. Records acknowledged but not yet deleted are past the cursor, so
        they are not sent again unless the process dies first (then ingest ignores them).
        """
        spans = self._unsettled
        while self._acked:
            mid, accepted = self._acked.popleft()
            entry = self._inflight.get(mid)
            if entry is None:
                continue
            if not accepted:
                # Left in flight: republished after ack_timeout_s, never deleted unacknowledged.
                self.refused_envelopes += 1
                log.error(
                    "broker refused %s seq %d..%d (not authorised on %s?); will retry",
                    entry.envelope.kind,
                    entry.envelope.first,
                    entry.envelope.last,
                    self._topics[entry.envelope.kind],
                )
                continue
            del self._inflight[mid]
            envelope = entry.envelope
            spans.append((envelope.kind, envelope.first, envelope.last))
            self.acknowledged_records += envelope.count
        with self._acknowledged:
            self._acknowledged.notify_all()
        due = time.monotonic() - self._settled_at >= SETTLE_EVERY_S
        batch = len(spans) >= SETTLE_WINDOWS * self.settings.inflight_window
        idle = not self._inflight  # nothing else to wait for: delete now
        if spans and (force or due or batch or idle):
            self.buffer.acknowledge(spans)
            self._unsettled = []
            self._settled_at = time.monotonic()

    def _outstanding(self) -> int:
        """Envelopes handed to paho whose PUBACK has not come in yet."""
        return len(self._inflight) - len(self._acked)

    def _top_up(self) -> None:
        """Hand paho envelopes read ahead until it holds HANDOFF_WINDOWS windows of them."""
        limit = HANDOFF_WINDOWS * self.settings.inflight_window
        while self._ready and self._outstanding() < limit:
            self._publish(self._ready.popleft())

    def _read_ahead(self) -> None:
        """Cut envelopes from the buffer until READ_AHEAD_WINDOWS windows of them are ready."""
        per_message, window = self.settings.records_per_message, self.settings.inflight_window
        while len(self._ready) < READ_AHEAD_WINDOWS * window:
            chunks = self.buffer.chunks(self._cursor, per_message * window)
            if not chunks:
                return
            self._cursor = chunks[-1].last
            by_kind: dict[str, list[Chunk]] = {}
            for chunk in chunks:
                by_kind.setdefault(chunk.kind, []).append(chunk)
            for kind in sorted(by_kind, key=_drain_rank):
                self._ready.extend(envelopes(kind, by_kind[kind], per_message))

    def _publish(self, envelope: _Envelope) -> None:
        now_ms = time.time_ns() // 1_000_000
        if now_ms != self._head_ms:  # sent_at has millisecond precision: one head per ms
            self._head = wire.envelope_head(self.gateway, self.site, datetime.now(UTC))
            self._head_ms = now_ms
        payload = b"".join([self._head, *envelope.parts, b"]}"])
        info = self.client.publish(self._topics[envelope.kind], payload, qos=1)
        self._inflight[info.mid] = _InFlight(envelope, time.monotonic())
        self.published_envelopes += 1

    def _resend_expired(self) -> None:
        deadline = time.monotonic() - self.settings.ack_timeout_s
        for mid, entry in list(self._inflight.items()):
            if entry.sent >= deadline:
                continue
            del self._inflight[mid]
            envelope = entry.envelope
            log.warning("no PUBACK for seq %d..%d; publishing again", envelope.first, envelope.last)
            self._publish(envelope)

    def wait_acknowledged(self, records: int, timeout_s: float) -> bool:
        """Block until the broker has acknowledged at least `records` records in all."""
        with self._acknowledged:
            return self._acknowledged.wait_for(
                lambda: self.acknowledged_records >= records, timeout_s
            )

    def inflight(self) -> int:
        return len(self._inflight)

    def publish_now(self, channel: wire.Channel, payload: bytes) -> None:
        """Publish a message that is not in the buffer (heartbeat), if connected."""
        if self.connected.is_set():
            self.client.publish(wire.topic(self.site, self.gateway, channel), payload, qos=1)

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
            info = self.client.publish(self._status_topic, wire.encode(offline), qos=1, retain=True)
            info.wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
