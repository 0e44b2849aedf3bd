"""The rules mark: the arrival time through which a worker's readings were evaluated, and the
readings after it that a restarted worker evaluates again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, func, literal, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import RulesProgress
from cloud.adapters.orm.readings import Reading
from cloud.domain.clock import utcnow
from cloud.service_layer.message_batch import READING_COLUMNS
from cloud.service_layer.rules.history import _RECEIVED


def progress(session: Session, worker_id: str) -> datetime | None:
    """Arrival time through which the worker's committed readings have been evaluated."""
    return session.scalar(
        select(RulesProgress.received_through).where(RulesProgress.worker_id == worker_id)
    )


@lru_cache(maxsize=2)
def _progress_upsert(dialect_name: str) -> Any:
    """The rules mark's upsert, built once a dialect (it runs with every evaluation)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    table = RulesProgress.__table__
    insert = dialect.insert(table).values(
        worker_id=bindparam("worker_id"),
        received_through=bindparam("through"),
        updated_at=bindparam("at"),
    )
    newer = (func.greatest if dialect is postgresql else func.max)(
        table.c.received_through, insert.excluded.received_through
    )
    return insert.on_conflict_do_update(
        index_elements=[table.c.worker_id],
        set_={"received_through": newer, "updated_at": insert.excluded.updated_at},
    )


def record_progress(session: Session, worker_id: str, readings: Sequence[tuple[Any, ...]]) -> None:
    """Note, in the evaluation's transaction, that the worker evaluated these readings."""
    if not readings:
        return
    through = max(map(itemgetter(_RECEIVED), readings))
    session.execute(
        _progress_upsert(session.get_bind().dialect.name),
        {"worker_id": worker_id, "through": through, "at": utcnow()},
    )


def unevaluated_readings(
    session: Session,
    since: datetime,
    before: datetime,
    after: tuple[datetime, str, int] | None = None,
    limit: int = 5000,
) -> list[tuple[Any, ...]]:
    """Readings received in [since, before), in arrival order, after the key (received_at,
    gateway_id, seq) of the last one of the previous page: what a restarted worker re-evaluates."""
    table = Reading.__table__
    query = select(*(table.c[c] for c in READING_COLUMNS)).where(
        table.c.received_at >= since, table.c.received_at < before
    )
    if after is not None:
        key = (table.c.received_at, table.c.gateway_id, table.c.seq)
        query = query.where(
            tuple_(*key) > tuple_(*(literal(v, c.type) for v, c in zip(after, key, strict=True)))
        )
    order = (table.c.received_at, table.c.gateway_id, table.c.seq)
    return [tuple(row) for row in session.execute(query.order_by(*order).limit(limit))]
