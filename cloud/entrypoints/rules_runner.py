"""Running the cold-chain rules on the ingest worker's readings: in its rules thread, or in
a process of its own fed by it (decisions 0013, 0014).

Both run the same loop (`serve`) over what the worker's writer sends, in order:
- `("unstored", n, readings)` before it commits batch n, then `("stored", n)` once it has,
  or `("lost", n)` if the batch was not stored as such (it then sends the readings it did
  store as committed lists). The rules evaluate batch n while the writer commits it, and
  commit their own transaction only after `("stored", n)`: nothing the rules conclude is
  ever committed before the readings it rests on. A lost batch rolls the evaluation back.
- a list of readings already committed (readings stored one by one, the restart catch-up);
- INVALIDATE when a gateway's status may have changed sensors or zones; None to end, once
  everything before it is evaluated.
When the rules fall behind, what is waiting is evaluated together (up to `limit` readings).
The process leaves the ingest process's interpreter lock to decoding and storing, so the
rules use the machine's other core; it reports each evaluation back through a queue.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cloud.service_layer import alerts as alerts_service
from cloud.service_layer import rules as rules_service
from cloud.service_layer.store import READING_COLUMNS

log = logging.getLogger(__name__)
_GATEWAY, _SEQ, _RECEIVED = (READING_COLUMNS.index(c) for c in ("gateway_id", "seq", "received_at"))
CAUGHT_UP = "caught-up"  # the process's first report: the restart catch-up is done
INVALIDATE = "invalidate"  # sent to the rules: a gateway's status changed sensors or zones
UNSTORED, STORED, LOST = "unstored", "stored", "lost"


@dataclass(frozen=True)
class RulesReport:
    """What one committed evaluation did: readings evaluated, excursions and holds opened."""

    readings: int
    opened: tuple[int, ...] = ()  # excursion ids
    holds: tuple[int, ...] = ()  # hold ids
    triggers: dict[int, datetime] = field(default_factory=dict)  # excursion id -> received_at
    began: datetime | None = None  # when the evaluation started
    # milliseconds spent evaluating, then waiting for the writer's word, then committing
    evaluating_ms: float = 0.0
    waiting_ms: float = 0.0
    committing_ms: float = 0.0
    committed_at: datetime | None = None  # when the commit returned


class Lost(Exception):
    """A batch the evaluation rests on was not stored: the evaluation is rolled back."""


def evaluate(
    engine: Engine,
    worker_id: str,
    readings: Sequence[tuple[Any, ...]],
    config: rules_service.RulesConfig,
    stored: Callable[[], bool] | None = None,
) -> RulesReport | None:
    """Evaluate readings and commit; None (logged) if that failed.

    With `stored`, the readings are being committed by the writer meanwhile: it is asked,
    just before the commit, whether they now are (it waits for the writer); if not, the
    evaluation is rolled back and Lost raised.
    """
    began, t0 = datetime.now(UTC), time.perf_counter()
    t1 = t2 = t0
    try:
        with Session(engine, expire_on_commit=False) as session:
            try:
                outcome = _evaluate(session, worker_id, readings, config, stored is not None)
            except (rules_service.StaleStates, DBAPIError) as exc:
                # Once more, every state read afresh: another writer changed a kept one, the
                # database dropped the connection (a restart, a failover: the pool has thrown
                # its connections away), or it broke a deadlock or a serialisation conflict
                # by aborting this transaction. Any other database error is not retried.
                if isinstance(exc, DBAPIError) and not _transient(exc):
                    raise
                # A dropped connection is news; stale states are routine when two workers
                # share a gateway's zones.
                level = logging.WARNING if isinstance(exc, DBAPIError) else logging.INFO
                log.log(level, "%s; evaluating again", exc)
                session.rollback()
                config.forget_states()
                outcome = _evaluate(session, worker_id, readings, config, stored is not None)
            t1 = time.perf_counter()
            if stored is not None and not stored():
                session.rollback()
                raise Lost
            t2 = time.perf_counter()
            session.commit()
            committed_at = datetime.now(UTC)
    except Lost:
        config.forget_states()
        raise
    except Exception:
        config.forget_states()
        log.exception("rules failed on %d readings; ingest goes on", len(readings))
        return None
    config.keep_states(outcome.states)
    return RulesReport(
        len(readings),
        tuple(e.id for e in outcome.opened),
        tuple(h.id for h in outcome.holds),
        dict(outcome.triggers),
        began,
        (t1 - t0) * 1000,
        (t2 - t1) * 1000,
        (time.perf_counter() - t2) * 1000,
        committed_at,
    )


# SQLSTATEs of a transaction the database aborted to let another go on: worth one more try
DEADLOCK, SERIALIZATION = "40P01", "40001"


def _transient(exc: DBAPIError) -> bool:
    """A failure the same evaluation, run again, is expected to get past."""
    return exc.connection_invalidated or getattr(exc.orig, "sqlstate", None) in (
        DEADLOCK,
        SERIALIZATION,
    )


def _evaluate(
    session: Session,
    worker_id: str,
    readings: Sequence[tuple[Any, ...]],
    config: rules_service.RulesConfig,
    unstored: bool,
) -> rules_service.RulesOutcome:
    """The rules, their alerts and the worker's mark, in the session's transaction."""
    outcome = rules_service.evaluate_readings(session, readings, config=config, unstored=unstored)
    if outcome.excursions or outcome.holds:
        alerts_service.raise_alerts(
            session,
            outcome.excursions,
            outcome.holds,
            fresh=[*outcome.opened, *outcome.holds],
            channels=config.channels(session),
            sites=config.sites(session, {e.zone_id for e in outcome.excursions}),
            lots=outcome.lots,
        )
    rules_service.record_progress(session, worker_id, readings)
    return outcome


@dataclass
class Work:
    """Readings to evaluate together: committed ones, and batches the writer is committing
    (batch number -> readings); `lost`: those of them it did not store."""

    committed: list[Any] = field(default_factory=list)
    unstored: dict[int, list[Any]] = field(default_factory=dict)
    lost: set[int] = field(default_factory=set)
    size: int = 0
    settled: bool = False  # the writer's word on every unstored batch has been read

    def readings(self, but_lost: bool = False) -> list[Any]:
        found = list(self.committed)
        for n, readings in self.unstored.items():
            if not (but_lost and n in self.lost):
                found.extend(readings)
        return found


class Feed:
    """The worker's messages to the rules, read in order (see the module's description).

    `get(timeout)` returns the next message or raises queue.Empty; `gone()` says whether the
    sender is dead (a process's parent), so waiting for a writer's word can end.
    """

    def __init__(
        self,
        get: Callable[[float | None], Any],
        config: rules_service.RulesConfig,
        limit: int,
        gone: Callable[[], bool] = lambda: False,
    ):
        self._get, self._gone = get, gone
        self.config, self.limit = config, limit
        self._ahead: deque[Any] = deque()  # read while waiting for a writer's word
        self._settled: dict[int, bool] = {}  # batch -> stored (True) or lost (False)
        self.done = False  # None was read: nothing more will come

    def _next(self, timeout: float | None) -> Any:
        if self._ahead:
            return self._ahead.popleft()
        return self._get(timeout)

    def _control(self, message: Any) -> bool:
        """Handle a message that is not readings; False if it is readings."""
        if message is None:
            self.done = True
        elif isinstance(message, str):
            if message == INVALIDATE:
                self.config.invalidate()
        elif isinstance(message, tuple) and message[0] in (STORED, LOST):
            self._settled[message[1]] = message[0] == STORED
        else:
            return False
        return True

    def _add(self, work: Work, message: Any) -> None:
        if isinstance(message, tuple):  # (UNSTORED, n, readings)
            work.unstored[message[1]] = message[2]
            work.size += len(message[2])
        else:
            work.committed.extend(message)
            work.size += len(message)

    def take(self, timeout: float | None) -> Work | None:
        """The next readings and whatever else is already waiting, up to `limit` readings;
        None if nothing came within `timeout` or the end was read."""
        work = Work()
        try:
            wait: float | None = timeout
            while not self.done and work.size < self.limit:
                message = self._next(wait)
                if not self._control(message):
                    self._add(work, message)
                    wait = 0  # only what is already waiting joins it
        except queue.Empty:
            pass
        return work if work.size else None

    def stored(self, work: Work) -> bool:
        """Wait until the writer has settled every unstored batch of `work`; True if all were
        stored (else they are noted in `work.lost`). Readings read meanwhile wait for the next
        `take`."""
        while any(n not in self._settled for n in work.unstored):
            try:
                message = self._get(1.0)
            except queue.Empty:
                if self._gone():
                    log.warning("the ingest worker is gone before its batch was stored")
                    work.lost.update(n for n in work.unstored if n not in self._settled)
                    break
                continue
            if not self._control(message):
                self._ahead.append(message)
        work.lost.update(n for n in work.unstored if not self._settled.pop(n, False))
        work.settled = True
        return not work.lost


def serve(
    feed: Feed,
    engine: Engine,
    worker_id: str,
    report: Callable[[RulesReport], None],
    idle: Callable[[], bool] = lambda: False,
) -> None:
    """Evaluate what the feed brings until its end; `idle()` is asked each second without
    work and ends the loop when True."""
    while not feed.done:
        work = feed.take(1.0)
        if work is None:
            if idle():
                return
            continue
        if not work.unstored:
            report(evaluate(engine, worker_id, work.committed, feed.config) or RulesReport(0))
            continue
        try:
            result = evaluate(
                engine, worker_id, work.readings(), feed.config, partial(feed.stored, work)
            )
        except Lost:
            kept = work.readings(but_lost=True)
            log.info("a batch was not stored as such; %d readings evaluated again", len(kept))
            result = evaluate(engine, worker_id, kept, feed.config) if kept else None
        if not work.settled:  # the evaluation failed before it asked: read the word anyway
            feed.stored(work)
        report(result or RulesReport(0))


def catch_up(
    engine: Engine,
    worker_id: str,
    started_at: datetime,
    run: Callable[[list[tuple[Any, ...]]], object],
) -> None:
    """Evaluate readings committed after the worker's rules mark and before it started."""
    try:
        with Session(engine) as session:
            since = rules_service.progress(session, worker_id)
        if since is None:
            return  # never evaluated anything: nothing of ours is known to be missed
        after, total = None, 0
        while True:
            with Session(engine) as session:
                page = rules_service.unevaluated_readings(session, since, started_at, after)
            if not page:
                break
            run(page)
            total += len(page)
            last = page[-1]
            after = (last[_RECEIVED], last[_GATEWAY], last[_SEQ])
        if total:
            log.info("rules caught up on %d readings committed since %s", total, since)
    except Exception:
        log.exception("the rules catch-up failed; the zones concerned show a gap")


def process_main(
    url: str,
    worker_id: str,
    started_at: datetime,
    inbox: Any,
    outbox: Any,
    limit: int,
    log_level: int,
) -> None:
    """The rules process: catch up, then evaluate what the worker sends until None.

    Stopping is the worker's to decide (it sends None once the rules have everything it
    committed), so the signals a terminal or service manager sends the whole group are
    ignored here; a worker that died without a word is noticed within a second.
    """
    from cloud.adapters.engine import make_engine
    from cloud.entrypoints.runtime import calm_collector

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s rules[%(process)d] %(message)s"
    )
    engine = make_engine(url, ping=False)  # evaluate() retries a dropped connection
    config = rules_service.RulesConfig()
    calm_collector()
    catch_up(engine, worker_id, started_at, lambda page: evaluate(engine, worker_id, page, config))
    outbox.put(CAUGHT_UP)

    def gone() -> bool:
        return parent is not None and not parent.is_alive()

    def idle() -> bool:
        if gone():
            log.warning("the ingest worker is gone; the rules stop")
            return True
        return False

    feed = Feed(lambda timeout: inbox.get(timeout=timeout), config, limit, gone)
    serve(feed, engine, worker_id, outbox.put, idle)
    outbox.put(None)
    engine.dispose()


class RulesProcess:
    """The parent's handle: a bounded queue in, reports out, and the process."""

    def __init__(self, engine: Engine, worker_id: str, queue_size: int, limit: int):
        context = multiprocessing.get_context("spawn")  # no copy of the worker's threads
        self.inbox = context.Queue(maxsize=queue_size)
        self.outbox = context.Queue()
        self._args = (engine.url.render_as_string(hide_password=False), worker_id)
        self._limit = limit
        self._context = context
        self.process: Any = None

    def start(self, started_at: datetime) -> None:
        self.process = self._context.Process(
            target=process_main,
            args=(
                *self._args,
                started_at,
                self.inbox,
                self.outbox,
                self._limit,
                logging.getLogger().getEffectiveLevel(),
            ),
            name="coldchain-rules",
            daemon=True,
        )
        self.process.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()
