"""Dead letters after a fix: replayed one by one or by filter through the normal ingest path.

A replay decodes the kept payload as the worker would (`MessageBatch.add_message`), writes
it with the store's idempotent write (a record stored before stays one row), runs the rules
and alerts on its readings, and records on the dead letter when and with what outcome it was
replayed. A message refused again stays a dead letter with its new reason in the outcome;
one whose payload was not kept whole (too large, or counted in a flood row) cannot be
replayed and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import DeadLetter
from cloud.domain.clock import utcnow
from cloud.service_layer import alerts, rules
from cloud.service_layer.audit import audit_reason
from cloud.service_layer.message_batch import MessageBatch
from cloud.service_layer.store import Store

log = logging.getLogger(__name__)
MAX_REPLAY = 1000  # dead letters one request may replay


@dataclass(frozen=True)
class ReplayOutcome:
    """What replaying one dead letter did."""

    dead_letter_id: int
    stored: bool
    detail: str


def replay(
    session: Session, store: Store, ids: Sequence[int], now: datetime | None = None
) -> list[ReplayOutcome]:
    """Replay these dead letters in order; each outcome is kept on its dead letter."""
    if len(ids) > MAX_REPLAY:
        raise ValueError(f"at most {MAX_REPLAY} dead letters a replay, not {len(ids)}")
    outcomes = []
    for ident in ids:
        letter = session.get(DeadLetter, ident)
        if letter is None:
            raise LookupError(f"dead letter {ident} does not exist")
        outcome = _replay_one(session, store, letter)
        letter.replayed_at = now or utcnow()
        letter.replay_outcome = outcome.detail
        session.commit()
        outcomes.append(outcome)
    return outcomes


def _replay_one(session: Session, store: Store, letter: DeadLetter) -> ReplayOutcome:
    if not letter.whole:
        why = (
            f"stands for {letter.count} refused messages"
            if letter.count != 1
            else f"payload not kept whole ({letter.size} bytes received, first "
            f"{len(letter.payload)} kept)"
        )
        return ReplayOutcome(letter.id, False, f"cannot be replayed: {why}")
    batch = MessageBatch()
    refused = batch.add_message(letter.topic, letter.payload, letter.received_at)
    if refused is not None:
        return ReplayOutcome(letter.id, False, f"refused again: {refused.reason}")
    result = store.write(batch)
    if batch.readings:
        evaluate(session, batch.readings)
    detail = f"stored: {result.readings_offered} reading(s) in it (one stored before stays one row)"
    log.info("dead letter %s replayed: %s", letter.id, detail)
    return ReplayOutcome(letter.id, True, detail)


def evaluate(session: Session, readings: list[tuple[object, ...]]) -> None:
    """The rules and their alerts over readings already stored, committed."""
    outcome = rules.evaluate_readings(session, readings)
    with audit_reason(session, "rules over replayed or seeded readings"):
        session.info.setdefault("actor", rules.SYSTEM_ACTOR)
        alerts.raise_alerts(session, outcome.excursions, outcome.holds)
        session.commit()
