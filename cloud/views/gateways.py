"""Gateways for the control room and the API: health from the latest heartbeat, and the
records each has lost (missing ranges of its sequence numbers)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import Gateway
from cloud.service_layer import sequences


@dataclass(frozen=True)
class MissingRange:
    first: int
    last: int
    count: int
    covered_by_drops: bool  # the gateway reported dropping as many records (a full buffer)


@dataclass(frozen=True)
class GatewayHealth:
    id: str
    site_id: str
    state: str
    last_seen: datetime | None
    last_heartbeat: datetime | None
    buffer_depth: int | None
    oldest_unsent_age_s: float | None
    dropped_records: int | None
    clock_synchronised: bool | None
    disk_free_bytes: int | None
    next_seq: int | None
    received_ranges: int
    missing: list[MissingRange]
    seq_restart_at: datetime | None
    seq_restart_from: int | None
    seq_restart_below: int | None

    @property
    def records_missing(self) -> int:
        """Records lost that no reported drop explains."""
        return sum(m.count for m in self.missing if not m.covered_by_drops)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        out["records_missing"] = self.records_missing
        return out


def _health(session: Session, g: Gateway) -> GatewayHealth:
    ranges = sequences.gateway_ranges(session, g.id)
    gaps = sequences.gaps_of(g, ranges)
    return GatewayHealth(
        id=g.id,
        site_id=g.site_id,
        state=g.state,
        last_seen=g.last_seen,
        last_heartbeat=g.last_heartbeat,
        buffer_depth=g.buffer_depth,
        oldest_unsent_age_s=g.oldest_unsent_age_s,
        dropped_records=g.dropped_records,
        clock_synchronised=g.clock_synchronised,
        disk_free_bytes=g.disk_free_bytes,
        next_seq=g.next_seq,
        received_ranges=len(ranges),
        missing=[MissingRange(m.first, m.last, m.count, m.covered) for m in gaps],
        seq_restart_at=g.seq_restart_at,
        seq_restart_from=g.seq_restart_from,
        seq_restart_below=g.seq_restart_below,
    )


def gateways(session: Session, site_id: str | None = None) -> list[GatewayHealth]:
    """Every gateway (of one site if given), by id."""
    query = select(Gateway).order_by(Gateway.id)
    if site_id is not None:
        query = query.where(Gateway.site_id == site_id)
    return [_health(session, g) for g in session.scalars(query)]


def gateway(session: Session, gateway_id: str) -> GatewayHealth | None:
    row = session.get(Gateway, gateway_id)
    return None if row is None else _health(session, row)
