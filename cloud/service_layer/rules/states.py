"""Detector states in zone_rule_states: locked reads, versioned writes, and the error raised
when a kept state was changed elsewhere since it was kept."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Update, bindparam, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from cloud.adapters.orm.quality import ZoneRuleState
from cloud.domain.clock import utcnow


class StaleStates(Exception):
    """A kept detector state was changed by someone else since: evaluate again, afresh."""


def _locked_states(session: Session, keys: list[tuple[str, str]]) -> dict:
    """(version, detector state) of (zone, profile) keys, locked until the caller's commit."""
    table = ZoneRuleState.__table__
    rows = session.execute(
        select(table.c.zone_id, table.c.profile_id, table.c.version, table.c.state)
        .where(tuple_(table.c.zone_id, table.c.profile_id).in_(keys))
        .order_by(table.c.zone_id, table.c.profile_id)
        .with_for_update()
    )
    return {(z, p): (version, state) for z, p, version, state in rows}


@lru_cache(maxsize=1)
def _state_update() -> Update:
    """Write a detector state if its version is still the one read or kept, and bump it."""
    table = ZoneRuleState.__table__
    return (
        update(table)
        .where(
            table.c.zone_id == bindparam("z"),
            table.c.profile_id == bindparam("p"),
            table.c.version == bindparam("v"),
        )
        .values(
            state=bindparam("state"),
            watermark=bindparam("watermark"),
            updated_at=bindparam("updated_at"),
            version=table.c.version + 1,
        )
    )


def _state_row(zone: str, name: str, state: dict[str, Any], now: datetime | None) -> dict:
    watermark = state.get("watermark")
    return {
        "zone_id": zone,
        "profile_id": name,
        "state": state,
        "watermark": None if watermark is None else datetime.fromtimestamp(watermark, UTC),
        "updated_at": now or utcnow(),
    }


def _save_state(row: ZoneRuleState, state: dict[str, Any], now: datetime | None) -> None:
    values = _state_row(row.zone_id, row.profile_id, state, now)
    row.state, row.watermark, row.updated_at = state, values["watermark"], values["updated_at"]
    flag_modified(row, "state")
