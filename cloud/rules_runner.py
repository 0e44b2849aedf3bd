"""Running the cold-chain rules on committed readings: in the ingest worker's rules thread, or
in a process of its own fed by it (decision 0013).

Both run the same evaluation: the rules, the alerts of what they opened and the worker's
rules mark, in one transaction. The process leaves the ingest process's interpreter lock to
decoding and storing, so the rules use the machine's other core; it reads readings from the
worker through a bounded queue and reports each evaluation back.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cloud import alerts_service, rules_service
from cloud.store import READING_COLUMNS

log = logging.getLogger(__name__)
_GATEWAY, _SEQ, _RECEIVED = (READING_COLUMNS.index(c) for c in ("gateway_id", "seq", "received_at"))
CAUGHT_UP = "caught-up"  # the process's first report: the restart catch-up is done
INVALIDATE = "invalidate"  # sent to the process: a gateway's status changed sensors or zones


@dataclass(frozen=True)
class RulesReport:
    """What one committed evaluation did: readings evaluated, excursions and holds opened."""

    readings: int
    opened: tuple[int, ...] = ()  # excursion ids
    holds: tuple[int, ...] = ()  # hold ids
    triggers: dict[int, datetime] = field(default_factory=dict)  # excursion id -> received_at


def evaluate(
    engine: Engine,
    worker_id: str,
    readings: Sequence[tuple[Any, ...]],
    config: rules_service.RulesConfig,
) -> RulesReport | None:
    """Evaluate committed readings and commit; None (logged) if that failed."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            outcome = rules_service.evaluate_readings(session, readings, config=config)
            if outcome.excursions or outcome.holds:
                alerts_service.raise_alerts(
                    session,
                    outcome.excursions,
                    outcome.holds,
                    fresh=[*outcome.opened, *outcome.holds],
                )
            rules_service.record_progress(session, worker_id, readings)
            session.commit()
    except Exception:
        log.exception("rules failed on %d committed readings; ingest goes on", len(readings))
        return None
    return RulesReport(
        len(readings),
        tuple(e.id for e in outcome.opened),
        tuple(h.id for h in outcome.holds),
        dict(outcome.triggers),
    )


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


def gather(
    first: list[Any],
    more: Callable[[], Any],
    limit: int,
    config: rules_service.RulesConfig,
) -> tuple[list[Any], bool]:
    """`first` and whatever else is waiting, up to `limit` readings: one evaluation for several
    batches when the rules are behind. True when the end (None) was met."""
    readings = list(first)
    while len(readings) < limit:
        try:
            batch = more()
        except queue.Empty:
            return readings, False
        if batch is None:
            return readings, True
        if batch == INVALIDATE:
            config.invalidate()
            continue
        readings.extend(batch)
    return readings, False


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
    from cloud.db import make_engine

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s rules[%(process)d] %(message)s"
    )
    engine = make_engine(url)
    config = rules_service.RulesConfig()
    catch_up(engine, worker_id, started_at, lambda page: evaluate(engine, worker_id, page, config))
    outbox.put(CAUGHT_UP)
    done = False
    while not done:
        try:
            first = inbox.get(timeout=1.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                log.warning("the ingest worker is gone; the rules stop")
                break
            continue
        if first is None:
            break
        if first == INVALIDATE:
            config.invalidate()
            continue
        readings, done = gather(first, inbox.get_nowait, limit, config)
        outbox.put(evaluate(engine, worker_id, readings, config) or RulesReport(0))
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
