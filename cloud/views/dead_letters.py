"""Dead letters as an admin reads them: refused messages newest first, by gateway, reason,
time and whether they were replayed; and the replay of one, for the control room."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import DeadLetter
from cloud.service_layer.dead_letters import replay
from cloud.service_layer.store import Store
from cloud.views.pages import where_given


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters: every field given narrows them (None: any)."""

    gateway_id: str | None = None
    reason: str | None = None  # a part of the reason, case-insensitive
    since: datetime | None = None
    until: datetime | None = None
    replayed: bool | None = None


def dead_letters(given: DeadLetterFilter) -> Select[DeadLetter]:
    """The dead letters the filter names, newest first."""
    query = where_given(select(DeadLetter), DeadLetter, gateway_id=given.gateway_id)
    if given.reason:
        query = query.where(DeadLetter.reason.icontains(given.reason, autoescape=True))
    if given.since is not None:
        query = query.where(DeadLetter.received_at >= given.since)
    if given.until is not None:
        query = query.where(DeadLetter.received_at <= given.until)
    if given.replayed is not None:
        replayed = DeadLetter.replayed_at.is_not(None)
        query = query.where(replayed if given.replayed else ~replayed)
    return query.order_by(DeadLetter.received_at.desc(), DeadLetter.id.desc())


def oldest_first_ids(session: Session, given: DeadLetterFilter, limit: int) -> list[int]:
    """Ids of up to `limit` dead letters the filter names, oldest first (the replay order)."""
    query = dead_letters(given).order_by(None).order_by(DeadLetter.received_at, DeadLetter.id)
    return list(session.scalars(query.with_only_columns(DeadLetter.id).limit(limit)))


@dataclass(frozen=True)
class DeadLetterRow:
    """One dead letter as the control room lists it (no payload)."""

    id: int
    received_at: datetime
    gateway_id: str | None
    topic: str
    reason: str
    size: int
    count: int
    whole: bool
    replayed_at: datetime | None
    replay_outcome: str | None


def dead_letter_rows(
    session: Session, given: DeadLetterFilter, limit: int = 200
) -> list[DeadLetterRow]:
    """Up to `limit` dead letters the filter names, newest first."""
    return [
        DeadLetterRow(
            d.id,
            d.received_at,
            d.gateway_id,
            d.topic,
            d.reason,
            d.size,
            d.count,
            d.whole,
            d.replayed_at,
            d.replay_outcome,
        )
        for d in session.scalars(dead_letters(given).limit(limit))
    ]


def dead_letter_gateways(session: Session) -> list[str]:
    """The gateways dead letters name, for a filter."""
    query = select(DeadLetter.gateway_id).where(DeadLetter.gateway_id.is_not(None)).distinct()
    return sorted(g for g in session.scalars(query) if g)


def replay_dead_letter(session: Session, letter_id: int) -> str:
    """Replay one dead letter through the normal ingest path (as the API does); its outcome."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    (outcome,) = replay(session, Store(engine), [letter_id])
    return outcome.detail
