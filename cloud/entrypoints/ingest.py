"""The ingest worker: MQTT messages in, one database transaction per batch, acks after commit.

paho delivers messages on its network thread; they are queued. A decoder thread takes them
in batches and decodes them (bad ones become dead letters in the same transaction) while the
writer thread commits the batch before, and only then acknowledges each of its messages to
the broker (paho manual acks), in arrival order. A crash before the commit means the broker
redelivers; the store ignores what it already has. At-least-once on the wire, exactly-once in
the database. As soon as a batch is decoded, the decoder hands its readings to the rules
thread through a bounded queue (it waits when the rules fall behind; nothing is dropped),
which evaluates the cold-chain rules on it while the writer finishes the batch before and
commits this one; the rules commit only after the writer says the batch is stored
(cloud.entrypoints.rules_runner, decisions 0014, 0017). On SQLite, and for batches with a status or
RFID observations, the writer hands them once committed, and the batches after them wait
for that. Each rules transaction records how far the worker got by arrival time; a
restarted worker first re-evaluates the readings committed after that mark (decision 0011).
With `rules_process`, the rules run in a process of their own instead, fed through a
bounded queue the same way, so they do not share the ingest process's interpreter lock
(decision 0013).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from cloud.domain.plausibility import TimeWindow
from cloud.domain.refusals import RefusalBudget
from cloud.entrypoints import rules_runner
from cloud.entrypoints.broker_login import BrokerLogin
from cloud.service_layer import rules as rules_service
from cloud.service_layer.message_batch import MessageBatch
from cloud.service_layer.store import Store
from edge import wire

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime


@dataclass(frozen=True, slots=True)
class _Decoded:
    """A decoded batch on its way to the writer: `number`, if the rules have it already
    (handed when decoded, waiting for the writer's word); `late`, to hand it once committed."""

    deliveries: list[Delivery]
    batch: MessageBatch | None
    number: int | None
    late: bool


def decode_batch(
    deliveries: list[Delivery],
    unsynchronised: set[str] | None = None,
    window: TimeWindow | None = None,
    budget: RefusalBudget | None = None,
) -> MessageBatch:
    """Validate every delivery; what fails becomes a dead letter with the reason.

    `unsynchronised`: gateways whose clock is not synchronised (kept by the caller and
    updated here by the heartbeats decoded); readings with implausible times are quarantined.
    `budget`: the caller's own rows and log lines of refusals per gateway (decision 0028);
    beyond it refusals are counted, and logged once a minute per gateway.
    """
    batch = MessageBatch(
        unsynchronised=unsynchronised if unsynchronised is not None else set(),
        window=window or TimeWindow(),
        budget=budget,
    )
    for d in deliveries:
        refused = batch.add_message(d.topic, d.payload, d.received_at)
        if refused is not None and refused.own_row:  # a flood is logged apart, below
            log.warning("dead letter from %s: %s", d.topic, refused.reason[:500])
    now = time.monotonic()
    for gateway, more in batch.refused_beyond_rows().items():
        due = more if budget is None else budget.counted(gateway, more, now)
        if due:
            log.warning("dead letters from %s: %d more refused, counted, not kept", gateway, due)
    return batch


class IngestWorker:
    """Subscribes to every gateway's channels and writes what arrives."""

    def __init__(
        self,
        store: Store,
        host: str,
        port: int,
        *,
        login: BrokerLogin | None = None,
        client_id: str = "coldchain-ingest-1",
        shared: bool = True,
        group: str = wire.SHARED_GROUP,
        session_expiry_s: int = 7 * 24 * 3600,
        protocol: str = "5",
        max_batch: int = 400,
        linger_s: float = 0.02,
        rules_queue: int = 8,
        rules_batch: int = 20_000,
        rules_process: bool = False,
        time_window: TimeWindow | None = None,
    ):
        self.store = store
        self.host, self.port = host, port
        self.login = login or BrokerLogin()
        self.shared = shared
        self.group = group
        self.session_expiry_s = session_expiry_s
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.protocol = protocol
        self.client_id = client_id
        self.rules_batch = rules_batch  # readings evaluated together at most
        self.time_window = time_window or TimeWindow()  # outside it, readings are quarantined
        # Gateways whose heartbeat said their clock is not synchronised (decoder thread).
        self.unsynchronised: set[str] = set()
        # Refused messages with rows and log lines of their own, per gateway (decoder thread).
        self.refusals = RefusalBudget()
        self._handed = 0  # batches handed to the rules before their commit
        self._queue: queue.Queue[Delivery] = queue.Queue()
        # One decoded batch waits while the writer commits the one before: decoding overlaps
        # the database's work instead of following it.
        self._decoded: queue.Queue[_Decoded] = queue.Queue(maxsize=1)
        # Decoded batches handed to the rules only once committed, not yet handed: while
        # there are any, later batches wait too (the rules see batches in order).
        self._late = 0
        self._order = threading.Lock()
        self._stop = threading.Event()
        self._writer_idle = threading.Event()  # the writer waits for a batch
        self.connected = threading.Event()
        self._refused = False  # the broker's CONNACK refused the last attempt
        self.written = 0
        self.dead = 0
        self.evaluated = 0  # readings the rules have evaluated and committed
        self.rules = True  # evaluate the cold-chain rules after each commit
        self.on_rules: Any = None  # called with each rules_runner.RulesReport
        # Sensor zones, profiles and suppression windows, kept between evaluations.
        self.rules_config = rules_service.RulesConfig()
        self.caught_up = threading.Event()  # set once the restart catch-up has run
        # Committed readings waiting for the rules; bounded, so the writer waits (backpressure)
        # when the rules fall behind. None, put by stop(), ends the thread once drained.
        self._committed: Any = queue.Queue(maxsize=rules_queue)
        self._process: rules_runner.RulesProcess | None = None
        if rules_process:
            self._process = rules_runner.RulesProcess(
                store.engine, client_id, rules_queue, rules_batch
            )
            self._committed = self._process.inbox
        self._started_at = datetime.now(UTC)
        self.client = self._make_client(client_id)
        self._decoder = threading.Thread(
            target=self._decode_loop, name="ingest-decoder", daemon=True
        )
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._rules = threading.Thread(target=self._rules_loop, name="ingest-rules", daemon=True)

    def _make_client(self, client_id: str) -> mqtt.Client:
        v5 = self.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
            clean_session=None if v5 else False,  # MQTT 5 has clean_start instead
        )
        client.reconnect_delay_set(min_delay=1, max_delay=30)  # doubled on every failure
        if self.login.tls is not None:
            client.tls_set_context(self.login.tls)
        if self.login.username is not None:
            client.username_pw_set(self.login.username, self.login.password)
        client.enable_logger(logging.getLogger("paho.mqtt"))  # socket and TLS errors
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    def _on_connect(
        self, client: mqtt.Client, _u: object, flags: object, reason: object, _p: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            # Not authorised, bad user name or password: paho retries with backoff; nothing
            # was acknowledged, the broker keeps the session's messages meanwhile.
            log.error("broker refused the ingest worker: %s; retrying", reason)
            self._refused = True  # the disconnect that follows says nothing more
            return
        log.info("ingest connected (session present: %s)", getattr(flags, "session_present", None))
        client.subscribe(
            [
                (wire.subscription("readings", self.shared, self.group), 1),
                (wire.subscription("rfid", self.shared, self.group), 1),
                (wire.subscription("events", self.shared, self.group), 1),
                (wire.subscription("heartbeat", self.shared, self.group), 1),
                # Status is retained; shared subscriptions get no retained messages, and every
                # worker may apply a status (it is an idempotent upsert).
                (wire.subscription("status", False), 1),
            ]
        )
        self.connected.set()

    def _on_connect_fail(self, _c: object, _u: object) -> None:
        # Called while paho handles the failure: the TLS or socket error is the one in hand.
        log.error(
            "cannot connect to the broker %s:%d: %s; retrying",
            self.host,
            self.port,
            sys.exc_info()[1] or "connection failed",
        )

    def _on_disconnect(
        self, _c: object, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        was_connected, refused = self.connected.is_set(), self._refused
        self.connected.clear()
        self._refused = False
        if was_connected and not self._stop.is_set():
            log.warning("ingest disconnected: %s", reason)
        elif not (refused or self._stop.is_set()):  # TLS 1.3: a refused certificate shows only now
            log.error(
                "cannot connect to the broker %s:%d: it closed the connection before accepting "
                "it (%s; the ingest's certificate refused or revoked?); retrying",
                self.host,
                self.port,
                reason,
            )

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        # Decoded on the writer thread (decode_batch): measured faster than here, where it
        # competes with paho's own work for the interpreter lock.
        # paho hands bytes (typed bytes | bytearray); bytes() of bytes is the same object
        payload = bytes(msg.payload)
        self._queue.put(Delivery(msg.topic, payload, msg.mid, msg.qos, datetime.now(UTC)))

    def start(self) -> None:
        properties = None
        clean_start: mqtt.CleanStartOption = mqtt.MQTT_CLEAN_START_FIRST_ONLY  # paho's default
        if self.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.session_expiry_s
            properties.ReceiveMaximum = 2 * self.max_batch
            clean_start = False
        self._started_at = datetime.now(UTC)  # what arrives from now on is evaluated live
        try:
            self.unsynchronised |= self.store.unsynchronised_gateways()
        except DBAPIError as exc:  # heartbeats tell again within a minute
            log.warning("cannot read the gateways' clock states yet: %s", exc.orig)
        if self._process is not None and self.rules:
            self._process.start(self._started_at)
        self._rules.start()
        self.client.connect_async(
            self.host, self.port, keepalive=30, clean_start=clean_start, properties=properties
        )
        self.client.loop_start()
        self._decoder.start()
        self._writer.start()

    def stop(self) -> None:
        self._stop.set()
        self._decoder.join(timeout=10)
        self._writer.join(timeout=10)
        while True:  # decoded, handed to the rules, never written: the broker redelivers them
            try:
                self._rules_settle(self._decoded.get_nowait().number, stored=False)
            except queue.Empty:
                break
        if self._rules.is_alive() and (self._process is None or self._process.alive()):
            try:  # the rules drain what was committed, then stop
                self._committed.put(None, timeout=30)
            except queue.Full:
                log.error("the rules did not drain their queue; stopping without them")
            self._rules.join(timeout=30)
        if self._process is not None and self._process.process is not None:
            self._process.process.join(timeout=10)
        self.client.disconnect()
        self.client.loop_stop()

    # --- decoder thread ---------------------------------------------------------------------

    def _next_batch(self) -> list[Delivery]:
        """Up to max_batch deliveries: lingering for more only while the writer is busy (an
        idle writer takes what is there at once; latency at low load is one commit)."""
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.linger_s
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self._writer_idle.is_set() and self._decoded.empty()):
                break
            try:
                batch.append(self._queue.get(timeout=min(remaining, 0.002)))
            except queue.Empty:
                continue
        return batch

    def _decode_loop(self) -> None:
        while not self._stop.is_set():
            deliveries = self._next_batch()
            if not deliveries:
                continue
            try:
                batch: MessageBatch | None = decode_batch(
                    deliveries, self.unsynchronised, self.time_window, self.refusals
                )
            except Exception:  # a bug, not bad input (that is a dead letter): write one by one
                log.exception("decoding a batch failed; it will be written one by one")
                batch = None
            decoded = self._hand_when_decoded(deliveries, batch)
            while True:
                if self._stop.is_set():
                    self._rules_settle(decoded.number, stored=False)
                    break
                try:
                    self._decoded.put(decoded, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def _hand_when_decoded(
        self, deliveries: list[Delivery], batch: MessageBatch | None
    ) -> _Decoded:
        """Hand the rules a batch as soon as it is decoded, if it may be evaluated alongside
        its commit and no batch before it waits to be handed once committed."""
        with self._order:
            early = batch is not None and self._late == 0 and self._alongside(batch)
            if not early:
                self._late += 1
        if early and batch is not None:
            return _Decoded(deliveries, batch, self._rules_unstored(batch.readings), False)
        return _Decoded(deliveries, batch, None, True)

    # --- writer thread ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            self._writer_idle.set()
            try:
                decoded = self._decoded.get(timeout=0.2)
            except queue.Empty:
                continue
            self._writer_idle.clear()
            self._commit_then_ack(decoded)

    def _commit_then_ack(self, decoded: _Decoded) -> None:
        """Commit the batch, retrying until it is stored, then acknowledge every message.

        The rules evaluate its readings meanwhile, if handed when decoded, and wait for the
        word that it is stored; a late batch is handed to them once committed."""
        deliveries, batch, number = decoded.deliveries, decoded.batch, decoded.number
        backoff, singly, reconnected = 0.5, batch is None, False
        registered: list[str] = []  # sensors registered now, their kept readings unevaluated
        while True:
            if self._stop.is_set():
                self._rules_settle(number, stored=False)
                return  # unacknowledged: the broker redelivers them to the next worker run
            if singly and number is not None:
                self._rules_settle(number, stored=False)  # stored one by one, handed so
                number = None
            try:
                if singly or batch is None:
                    self._write_singly(deliveries)
                else:
                    result = self.store.write(batch)
                    self.written += result.readings_offered
                    self.dead += result.dead_letters
                    registered = list(result.registered)
                break
            except (IntegrityError, DataError) as exc:
                # A message the schema refuses (a key, a value too long or out of range) must
                # not block the ones behind it: it is the message's fault, not the database's.
                log.error("batch refused by the database (%s); writing one by one", exc.orig)
                singly = True
            except DBAPIError as exc:
                if exc.connection_invalidated and not reconnected:  # dropped: at once, anew
                    log.warning("the database connection was lost (%s); writing again", exc.orig)
                    reconnected = True
                    continue
                # the database is unreachable: wait for it
                log.error("cannot store the batch (%s); retrying in %.1fs", exc.orig, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 30)
            except Exception:  # a message this code cannot store: find it, keep the thread
                log.exception("batch failed; writing one by one")
                singly = True
        self._rules_settle(number, stored=True)
        for d in deliveries:
            if d.qos > 0:
                self.client.ack(d.mid, d.qos)
        if batch is None or batch.statuses or singly:
            self._invalidate_rules_config()
        if registered:  # evaluated through the normal path, now the sensors have zones
            log.info("sensors %s registered: evaluating their kept readings", registered)
            try:
                kept = self.store.readings_of(registered)
            except DBAPIError as exc:  # the nightly reconciliation flags what they show (0026)
                log.error("cannot read the kept readings of %s: %s", registered, exc.orig)
                kept = []
            for start in range(0, len(kept), self.rules_batch):
                self._hand_to_rules(kept[start : start + self.rules_batch])
        if decoded.late:
            if batch is not None and not singly:
                self._hand_to_rules(batch.readings)  # committed: the rules may commit at once
            with self._order:
                self._late -= 1

    # --- rules thread -----------------------------------------------------------------------

    def _invalidate_rules_config(self) -> None:
        """A gateway may have moved sensors or zones: the rules read their set-up again."""
        self.rules_config.invalidate()
        if self._process is not None and self.rules and self._process.alive():
            try:
                self._committed.put(rules_runner.INVALIDATE, timeout=1.0)
            except queue.Full:
                log.warning("the rules are behind; they see set-up changes within seconds")

    def _alongside(self, batch: MessageBatch) -> bool:
        """Whether the rules may evaluate this batch while it is being committed.

        Not on SQLite (one writer at a time: the store would wait for the rules, which wait
        for the store), and not for a batch that changes set-up (a status upserts the zones
        an excursion being inserted refers to) or custody (audited: the store would wait for
        the audit chain the rules hold): the rules get those once they are committed.
        """
        return (
            self.store.engine.dialect.name != "sqlite"
            and not batch.statuses
            and not batch.observations
        )

    def _rules_unstored(self, readings: list[Any]) -> int | None:
        """Hand the rules a batch about to be committed; its number, None if not handed."""
        if not (self.rules and readings):
            return None
        self._handed += 1
        return (
            self._handed
            if self._hand_to_rules((rules_runner.UNSTORED, self._handed, readings))
            else None
        )

    def _rules_settle(self, number: int | None, *, stored: bool) -> None:
        """Tell the rules whether batch `number` was stored: they commit, or roll back."""
        if number is not None:
            self._hand_to_rules((rules_runner.STORED if stored else rules_runner.LOST, number))

    def _hand_to_rules(self, message: Any) -> bool:
        """Queue a message (readings committed, or a batch's) for the rules; wait while the
        rules are behind. False if the rules are gone."""
        if not (self.rules and message):
            return False
        while True:
            try:
                self._committed.put(message, timeout=1.0)
                return True
            except queue.Full:
                gone = not self._rules.is_alive() or (
                    self._process is not None and not self._process.alive()
                )
                if gone:
                    log.error("the rules are gone; readings are not evaluated")
                    return False

    def _rules_loop(self) -> None:
        if self._process is not None and self.rules:
            self._report_loop()
            return
        if self.rules:
            rules_runner.catch_up(
                self.store.engine, self.client_id, self._started_at, self._evaluate_rules
            )
        self.caught_up.set()
        feed = rules_runner.Feed(
            lambda timeout: self._committed.get(timeout=timeout),
            self.rules_config,
            self.rules_batch,
        )
        rules_runner.serve(feed, self.store.engine, self.client_id, self._reported)

    def _report_loop(self) -> None:
        """Process mode: count and pass on what the rules process reports, until it ends."""
        assert self._process is not None
        while True:
            try:
                report = self._process.outbox.get(timeout=1.0)
            except queue.Empty:
                if not self._process.alive():
                    log.error("the rules process ended unexpectedly")
                    self.caught_up.set()
                    return
                continue
            if report is None:
                return
            if report == rules_runner.CAUGHT_UP:
                self.caught_up.set()
                continue
            self._reported(report)

    def _reported(self, report: rules_runner.RulesReport) -> None:
        self.evaluated += report.readings
        if self.on_rules is not None:
            self.on_rules(report)

    def _evaluate_rules(self, readings: list[Any]) -> None:
        """Cold-chain rules on committed readings (the restart catch-up), retried until done."""
        if not (self.rules and readings):
            return
        report = rules_runner.evaluate(
            self.store.engine, self.client_id, readings, self.rules_config
        )
        self._reported(report)

    def _write_singly(self, deliveries: list[Delivery]) -> None:
        """Each message in its own transaction; one that cannot be stored is dead-lettered."""
        for d in deliveries:
            try:
                single = decode_batch([d], set(self.unsynchronised), self.time_window)
                result = self.store.write(single)
                self.written += result.readings_offered
                self._hand_to_rules(single.readings)
                continue
            except (IntegrityError, DataError) as exc:
                reason = f"refused by the database: {exc.orig}"
            except DBAPIError:
                raise  # unreachable database: the caller waits and retries
            except Exception as exc:
                reason = f"could not be stored: {type(exc).__name__}: {exc}"
            batch = MessageBatch()
            batch.add_dead_letter(d.topic, d.payload, reason, d.received_at)
            self.store.write(batch)
            self.dead += 1
