"""Dead letters as an admin reads them: refused messages newest first, by gateway, reason,
time and whether they were replayed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import DeadLetter
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
