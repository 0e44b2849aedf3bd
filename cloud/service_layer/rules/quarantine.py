"""Readings the rules could not evaluate: kept aside with the reason, so that one reading
(or one zone's corrupt state) never takes its batch, its zone's neighbours or other
gateways down with it (decision 0022). A quarantined reading stays stored; only its
evaluation is set aside, and it counts as evaluated for the rules mark."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import QuarantinedReading
from cloud.domain.clock import utcnow
from cloud.service_layer.message_batch import READING_COLUMNS

_GATEWAY, _SEQ, _SENSOR, _TAKEN, _RECEIVED = (
    READING_COLUMNS.index(c) for c in ("gateway_id", "seq", "sensor_id", "taken_at", "received_at")
)


def quarantine(
    session: Session, worker_id: str, readings: Sequence[tuple[Any, ...]], reason: str
) -> None:
    """Set readings (tuples in READING_COLUMNS order) aside with the reason, in the caller's
    transaction; a reading quarantined again gets the newer reason."""
    if not readings:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = QuarantinedReading.__table__
    now = utcnow()
    insert = dialect.insert(table)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[table.c.gateway_id, table.c.seq],
            set_={
                "reason": insert.excluded.reason,
                "worker_id": insert.excluded.worker_id,
                "quarantined_at": insert.excluded.quarantined_at,
            },
        ),
        [
            {
                "gateway_id": r[_GATEWAY],
                "seq": r[_SEQ],
                "sensor_id": r[_SENSOR],
                "taken_at": r[_TAKEN],
                "received_at": r[_RECEIVED],
                "worker_id": worker_id,
                "reason": reason,
                "quarantined_at": now,
            }
            for r in readings
        ],
    )


def quarantined_readings(session: Session, limit: int = 100) -> list[QuarantinedReading]:
    """The readings set aside, newest first."""
    query = select(QuarantinedReading).order_by(
        QuarantinedReading.quarantined_at.desc(),
        QuarantinedReading.gateway_id,
        QuarantinedReading.seq,
    )
    return list(session.scalars(query.limit(limit)))
