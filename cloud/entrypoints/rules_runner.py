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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cloud.entrypoints.rules_evaluate import (
    Backoff,
    Lost,
    RulesReport,
    Stopped,
    evaluate,
    transient,
)
from cloud.service_layer import rules as rules_service
from cloud.service_layer.message_batch import READING_COLUMNS

log = logging.getLogger(__name__)
_GATEWAY, _SEQ, _RECEIVED = (READING_COLUMNS.index(c) for c in ("gateway_id", "seq", "received_at"))
CAUGHT_UP = "caught-up"  # the process's first report: the restart catch-up is done
INVALIDATE = "invalidate"  # sent to the rules: a gateway's status changed sensors or zones
UNSTORED, STORED, LOST = "unstored", "stored", "lost"
__all__ = ["Lost", "RulesReport", "Stopped", "evaluate"]  # the loop's, from rules_evaluate


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
        self._ahead_size = 0  # readings in _ahead
        self._settled: dict[int, bool] = {}  # batch -> stored (True) or lost (False)
        self.done = False  # None was read: nothing more will come
        # While the rules wait for the database, readings beyond `limit` are dropped from
        # memory (the writer goes on storing them) and read back from the database from the
        # rules mark once the rules are back (`resume`). Batches dropped before their commit
        # wait here for the writer's word.
        self.behind = False
        self._dropped: set[int] = set()

    def _next(self, timeout: float | None) -> Any:
        if self._ahead:
            message = self._ahead.popleft()
            self._ahead_size -= len(message[2] if isinstance(message, tuple) else message)
            return message
        return self._get(timeout)

    def _hold(self, message: Any, may_drop: bool = True) -> None:
        """Readings read while the rules cannot take them: kept for later, or dropped (and
        read back from the database) once more than `limit` wait or the rules are behind.

        `may_drop` is False while the rules wait for the writer's word on a batch: that wait
        is short, and a backlog read meanwhile is evaluated next, in order; dropping it there
        would turn every batch of a gateway's backlog into late data read back and replayed
        (30 times slower to drain: bench/e2e_ingest.py)."""
        if not self.behind:
            self._ahead.append(message)
            self._ahead_size += len(message[2] if isinstance(message, tuple) else message)
            if self._ahead_size <= self.limit or not may_drop:
                return
            log.warning(
                "the rules are behind; readings that arrive meanwhile are read back from "
                "the database once they are back"
            )
            self.behind = True
        while self._ahead:
            dropped = self._ahead.popleft()
            if isinstance(dropped, tuple):  # (UNSTORED, n, readings): its word is awaited
                self._dropped.add(dropped[1])
        self._ahead_size = 0

    def pause(self, seconds: float) -> None:
        """Wait `seconds` (the rules wait for the database), reading the queue meanwhile so
        the writer never waits for the rules; Stopped if the worker stops or is gone."""
        deadline = time.monotonic() + seconds
        while True:
            if self.done or self._gone():
                raise Stopped
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                message = self._get(min(left, 1.0))
            except queue.Empty:
                continue
            if not self._control(message):
                self._hold(message)

    def resume(self, engine: Engine, worker_id: str, run: Callable[[list[Any]], object]) -> None:
        """Back from a wait in which readings were dropped: once the writer has settled the
        batches dropped before their commit, evaluate from the database, in arrival order,
        every reading received after the rules mark (some again: evaluation is idempotent).
        What arrives meanwhile is kept and evaluated after."""
        waiting = set(self._dropped)
        self.behind = False
        while waiting & self._dropped:
            if self.done or self._gone():
                raise Stopped
            try:
                message = self._get(1.0)
            except queue.Empty:
                continue
            if not self._control(message):
                self._hold(message)
        catch_up(engine, worker_id, datetime.now(UTC), run, self.pause)

    def _control(self, message: Any) -> bool:
        """Handle a message that is not readings; False if it is readings."""
        if message is None:
            self.done = True
        elif isinstance(message, str):
            if message == INVALIDATE:
                self.config.invalidate()
        elif isinstance(message, tuple) and message[0] in (STORED, LOST):
            if message[1] in self._dropped:
                self._dropped.discard(message[1])
            else:
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
        if work.settled:
            return not work.lost
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
                self._hold(message, may_drop=False)
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
    work and ends the loop when True. Each evaluation is retried until done (a database
    away for minutes included), reading the queue meanwhile; readings dropped from memory
    then are read back from the rules mark. Stops early only if the worker does (Stopped):
    a restarted worker resumes from the mark."""
    run = partial(evaluate, engine, worker_id, config=feed.config, pause=feed.pause)
    try:
        while not feed.done:
            if feed.behind:
                feed.resume(engine, worker_id, lambda page: report(run(page)))
                continue
            work = feed.take(1.0)
            if work is None:
                if idle():
                    return
                continue
            if not work.unstored:
                report(run(work.committed))
                continue
            try:
                result = run(work.readings(), stored=partial(feed.stored, work))
            except Lost:
                kept = work.readings(but_lost=True)
                log.info("a batch was not stored as such; %d readings evaluated again", len(kept))
                result = run(kept) if kept else RulesReport(0)
            report(result)
    except Stopped:
        log.warning("the worker stopped while the rules waited; a restart resumes from the mark")


def catch_up(
    engine: Engine,
    worker_id: str,
    started_at: datetime,
    run: Callable[[list[tuple[Any, ...]]], object],
    pause: Callable[[float], None] = time.sleep,
) -> None:
    """Evaluate readings committed after the worker's rules mark and before `started_at`
    (the worker's start, or the moment the rules came back from a wait), in arrival order.
    Reading the mark and the pages is retried like an evaluation while the database is away.
    """

    def read(query: Callable[[Session], Any]) -> Any:
        backoff = Backoff()
        while True:
            try:
                with Session(engine) as session:
                    return query(session)
            except Exception as exc:
                if not transient(exc):
                    raise
                delay = backoff.next()
                log.warning("the rules cannot read the database (%s); again in %.1f s", exc, delay)
                if delay:
                    pause(delay)

    since = read(lambda session: rules_service.progress(session, worker_id))
    if since is None:
        return  # never evaluated anything: nothing of ours is known to be missed
    after, total = None, 0
    while True:
        page = read(
            partial(rules_service.unevaluated_readings, since=since, before=started_at, after=after)
        )
        if not page:
            break
        run(page)
        total += len(page)
        last = page[-1]
        after = (last[_RECEIVED], last[_GATEWAY], last[_SEQ])
    if total:
        log.info("rules caught up on %d readings committed since %s", total, since)


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

    def gone() -> bool:
        return parent is not None and not parent.is_alive()

    def wait(seconds: float) -> None:  # for the database, during the catch-up
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if gone():
                raise Stopped
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    try:
        catch_up(
            engine,
            worker_id,
            started_at,
            lambda page: evaluate(engine, worker_id, page, config, pause=wait),
            wait,
        )
    except Stopped:
        log.warning("the ingest worker is gone during the catch-up; the rules stop")
        return
    outbox.put(CAUGHT_UP)

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
