"""One evaluation of the rules, done whatever it takes: retried while the database is away,
and a reading that cannot be evaluated set aside so that the rest is (decision 0022).

`evaluate` commits the rules' conclusions, their alerts and the worker's rules mark in one
transaction. A failure the database causes (a dropped connection, the database down or
restarting, a deadlock, a serialisation conflict, another worker's change to a kept state)
is retried, at once the first time and then with a growing pause (0.1 s doubling to 30 s,
with jitter), for as long as it takes: the rules never go past readings they have not
evaluated. Any other failure is the readings' (a value or a zone's stored state the code
cannot take): the readings are halved until the ones that fail alone are found; those are
quarantined with the reason and the others evaluated, in order.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from cloud.service_layer import alerts as alerts_service
from cloud.service_layer import rules as rules_service

log = logging.getLogger("cloud.entrypoints.rules_runner")  # one logger for the rules loop


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
    quarantined: int = 0  # readings set aside, not evaluated (counted in `readings`)


class Lost(Exception):
    """A batch the evaluation rests on was not stored: the evaluation is rolled back."""


class Stopped(Exception):
    """The worker stopped or is gone while the rules waited for the database: they end, and
    a restarted worker resumes from the rules mark."""


# SQLSTATEs of a transaction the database aborted to let another go on
DEADLOCK, SERIALIZATION = "40P01", "40001"


def transient(exc: BaseException) -> bool:
    """A failure of the database's, not of the readings': the same evaluation, run again
    once the database is back, is expected to get past it.

    Dropped connections, refused connections, a database shutting down or out of resources
    (OperationalError), the driver's own state (InterfaceError, InternalError), the schema
    not being what the code expects (ProgrammingError, an upgrade under way), deadlocks,
    serialisation conflicts, an exhausted pool and stale kept states. Data and integrity
    errors, and anything not from the database, are the readings'.
    """
    if isinstance(exc, rules_service.StaleStates | PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if getattr(exc.orig, "sqlstate", None) in (DEADLOCK, SERIALIZATION):
        return True
    from sqlalchemy.exc import InterfaceError, InternalError, OperationalError, ProgrammingError

    return isinstance(exc, OperationalError | InterfaceError | InternalError | ProgrammingError)


class Backoff:
    """Pauses between attempts: none the first time, then `first` doubling to `most`, each
    drawn at random between half and all of it (so workers do not retry in step)."""

    def __init__(self, first: float = 0.1, most: float = 30.0):
        self.first, self.most = first, most
        self.attempts = 0
        self._delay = 0.0

    def next(self) -> float:
        self.attempts += 1
        if self.attempts == 1:
            return 0.0
        self._delay = self.first if not self._delay else min(self._delay * 2, self.most)
        return random.uniform(self._delay / 2, self._delay)


def _brief(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def evaluate(
    engine: Engine,
    worker_id: str,
    readings: Sequence[tuple[Any, ...]],
    config: rules_service.RulesConfig,
    stored: Callable[[], bool] | None = None,
    pause: Callable[[float], None] = time.sleep,
) -> RulesReport:
    """Evaluate readings and commit, retrying until done; readings that cannot be evaluated
    are quarantined (see the module's description).

    With `stored`, the readings are being committed by the writer meanwhile: it is asked,
    just before the commit, whether they now are (it waits for the writer); if not, the
    evaluation is rolled back and Lost raised. `pause(seconds)` waits between attempts (the
    rules loop reads its queue meanwhile; it raises Stopped when the worker is gone).
    """
    backoff = Backoff()
    while True:
        try:
            return _attempt(engine, worker_id, readings, config, stored)
        except Lost:
            config.forget_states()
            raise
        except Exception as exc:
            config.forget_states()  # the detectors changed them in place
            if transient(exc):
                delay = backoff.next()
                level = (
                    logging.INFO if isinstance(exc, rules_service.StaleStates) else logging.WARNING
                )
                log.log(
                    level,
                    "rules could not evaluate %d readings (%s); again in %.1f s",
                    len(readings),
                    _brief(exc),
                    delay,
                )
                if delay:
                    pause(delay)
                continue
            failure = exc
        break
    # The readings' own failure. Parts of them are committed separately, so the writer's word
    # on an unstored batch is read first.
    if stored is not None and not stored():
        raise Lost from failure
    log.error(
        "rules failed on %d readings (%s); finding the ones at fault",
        len(readings),
        _brief(failure),
    )
    return _isolate(engine, worker_id, readings, config, pause, failure)


def _isolate(
    engine: Engine,
    worker_id: str,
    readings: Sequence[tuple[Any, ...]],
    config: rules_service.RulesConfig,
    pause: Callable[[float], None],
    failure: BaseException,
) -> RulesReport:
    """Evaluate the readings in halves, in order; a single reading that fails is
    quarantined."""
    if len(readings) == 1:
        return _set_aside(engine, worker_id, readings, pause, failure)
    middle = len(readings) // 2
    reports = []
    for part in (readings[:middle], readings[middle:]):
        backoff = Backoff()
        while True:
            try:
                reports.append(_attempt(engine, worker_id, part, config, None))
                break
            except Exception as exc:
                config.forget_states()
                if transient(exc):
                    delay = backoff.next()
                    if delay:
                        pause(delay)
                    continue
                reports.append(_isolate(engine, worker_id, part, config, pause, exc))
                break
    return _merge(reports)


def _set_aside(
    engine: Engine,
    worker_id: str,
    readings: Sequence[tuple[Any, ...]],
    pause: Callable[[float], None],
    failure: BaseException,
) -> RulesReport:
    reason = f"the rules could not evaluate it: {_brief(failure)}"
    log.error("reading %s/%s quarantined: %s", readings[0][0], readings[0][1], reason)
    backoff = Backoff()
    while True:
        try:
            with Session(engine) as session:
                rules_service.quarantine(session, worker_id, readings, reason)
                rules_service.record_progress(session, worker_id, readings)
                session.commit()
            return RulesReport(len(readings), quarantined=len(readings))
        except (DBAPIError, PoolTimeout) as exc:
            if isinstance(exc, IntegrityError) or not transient(exc):
                raise
            delay = backoff.next()
            if delay:
                pause(delay)


def _merge(reports: list[RulesReport]) -> RulesReport:
    triggers: dict[int, datetime] = {}
    for r in reports:
        triggers.update(r.triggers)
    return RulesReport(
        sum(r.readings for r in reports),
        tuple(i for r in reports for i in r.opened),
        tuple(i for r in reports for i in r.holds),
        triggers,
        next((r.began for r in reports if r.began), None),
        sum(r.evaluating_ms for r in reports),
        sum(r.waiting_ms for r in reports),
        sum(r.committing_ms for r in reports),
        next((r.committed_at for r in reversed(reports) if r.committed_at), None),
        sum(r.quarantined for r in reports),
    )


def _attempt(
    engine: Engine,
    worker_id: str,
    readings: Sequence[tuple[Any, ...]],
    config: rules_service.RulesConfig,
    stored: Callable[[], bool] | None,
) -> RulesReport:
    """One transaction: the rules, their alerts and the mark; raises whatever failed."""
    began, t0 = datetime.now(UTC), time.perf_counter()
    with Session(engine, expire_on_commit=False) as session:
        outcome = _evaluate(session, worker_id, readings, config, stored is not None)
        t1 = time.perf_counter()
        if stored is not None and not stored():
            session.rollback()
            raise Lost
        t2 = time.perf_counter()
        session.commit()
        committed_at = datetime.now(UTC)
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
