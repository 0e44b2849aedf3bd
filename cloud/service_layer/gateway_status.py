"""A gateway's status speaks only for the gateway: its inventory, never master data.

A status names the gateway's site, zones, sensors and read points. What it may do:

- register what is new and its own: a site, zone, sensor or read point heard of for the first
  time is created as described (commissioning);
- nothing else. Limits, kinds, names and time zones of sites and zones already known are
  master data, changed only through the audited API: a status that describes them otherwise
  leaves them as they are and files a proposal an admin can accept or reject
  (`master_data_proposals`);
- it may not describe another site's zones, another gateway's sensors or read points, or a
  site other than the one the gateway belongs to: those parts are refused, and the store
  dead-letters the status with the reasons and alerts the admins.

Runs in the ingest write transaction (cloud/service_layer/store.py), on Core statements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import (
    Gateway,
    MasterDataProposal,
    ReadPoint,
    Sensor,
    Site,
    Zone,
)
from cloud.domain.clock import utcnow
from cloud.service_layer.rules.profiles import renew_set_up
from edge import wire

SITE_FIELDS = ("name", "kind", "timezone")
ZONE_FIELDS = ("name", "kind", "low", "high")


@dataclass
class StatusOutcome:
    """What a status changed, proposed and was refused."""

    proposed: list[str] = field(default_factory=list)  # "zone z1 high: 8.0 -> 50.0"
    refused: list[str] = field(default_factory=list)  # reasons, each naming what

    @property
    def whole(self) -> bool:
        """False if the status named a site that is not its gateway's: nothing was applied."""
        return not any(r.startswith("site ") for r in self.refused)


def apply_status(conn: Any, status: wire.StatusMessage, at: datetime) -> StatusOutcome:
    """Apply what the status may change (see the module); the gateway's row must exist."""
    outcome = StatusOutcome()
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    home = conn.execute(select(Gateway.site_id).where(Gateway.id == status.gateway)).scalar()
    if home is not None and home != status.site:
        outcome.refused.append(
            f"site {status.site}: gateway {status.gateway} belongs to site {home}; a move is "
            "made through the API"
        )
        return outcome
    conn.execute(
        update(Gateway)
        .where(Gateway.id == status.gateway)
        .values(state=status.state, state_since=at)
    )
    if status.site_info is not None:
        _site(conn, insert, status, status.site_info, at, outcome)
    zones = _zones(conn, insert, status, at, outcome)
    _read_points(conn, insert, status, zones, outcome)
    _sensors(conn, insert, status, zones, outcome)
    return outcome


def _site(
    conn: Any,
    insert: Any,
    status: wire.StatusMessage,
    info: wire.SiteInfo,
    at: datetime,
    outcome: StatusOutcome,
) -> None:
    if info.id != status.site:
        outcome.refused.append(f"site_info {info.id}: the status is of site {status.site}")
        return
    described = {"name": info.name, "kind": info.kind, "timezone": info.timezone}
    row = conn.execute(select(Site).where(Site.id == info.id)).first()
    if row is None or row.kind == "unknown":  # first heard of, or only named by a topic
        values = {"id": info.id, **described}
        stmt = insert(Site.__table__).values(values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=described))
        return
    stored = {f: getattr(row, f) for f in SITE_FIELDS}
    _propose(conn, insert, status.gateway, "site", info.id, stored, described, at, outcome)


def _zones(
    conn: Any, insert: Any, status: wire.StatusMessage, at: datetime, outcome: StatusOutcome
) -> set[str]:
    """The status's zones that are the site's (created if new); others are refused."""
    if not status.zones:
        return set()
    ids = [z.id for z in status.zones]
    stored = {r.id: r for r in conn.execute(select(Zone).where(Zone.id.in_(ids)))}
    own: set[str] = set()
    for zone in status.zones:
        described = {"name": zone.name, "kind": zone.kind, "low": zone.low, "high": zone.high}
        row = stored.get(zone.id)
        if row is None:
            values = {"id": zone.id, "site_id": status.site, **described}
            conn.execute(insert(Zone.__table__).values(values).on_conflict_do_nothing())
        elif row.site_id != status.site:
            outcome.refused.append(
                f"zone {zone.id}: it is a zone of site {row.site_id}, not of {status.site}"
            )
            continue
        else:
            current = {f: getattr(row, f) for f in ZONE_FIELDS}
            _propose(conn, insert, status.gateway, "zone", zone.id, current, described, at, outcome)
        own.add(zone.id)
    return own


def _read_points(
    conn: Any, insert: Any, status: wire.StatusMessage, zones: set[str], outcome: StatusOutcome
) -> None:
    rows = [
        {"id": p.id, "zone_id": p.zone, "reader": p.reader, "business_step": p.business_step}
        for p in status.read_points
    ]
    _register(conn, insert, status, zones, outcome, ReadPoint, "read point", rows)


def _sensors(
    conn: Any, insert: Any, status: wire.StatusMessage, zones: set[str], outcome: StatusOutcome
) -> None:
    rows = [{"id": s.id, "zone_id": s.zone, "model": s.model} for s in status.sensors]
    _register(conn, insert, status, zones, outcome, Sensor, "sensor", rows)


def _register(
    conn: Any,
    insert: Any,
    status: wire.StatusMessage,
    zones: set[str],
    outcome: StatusOutcome,
    model: type[ReadPoint] | type[Sensor],
    what: str,
    described: list[dict[str, Any]],
) -> None:
    """Register the gateway's own sensors or read points, in zones of its site; another
    gateway's, or one in a zone not of the site, is refused."""
    if not described:
        return
    query = select(model.id, model.gateway_id).where(model.id.in_([d["id"] for d in described]))
    owner: dict[str, str] = {i: g for i, g in conn.execute(query)}
    rows = []
    for item in described:
        ident, zone = item["id"], item["zone_id"]
        if owner.get(ident, status.gateway) != status.gateway:
            outcome.refused.append(f"{what} {ident}: it is gateway {owner[ident]}'s")
        elif zone not in zones and (why := _zone_refusal(conn, zone, status.site)):
            outcome.refused.append(f"{what} {ident}: {why}")
        else:
            rows.append({**item, "gateway_id": status.gateway})
    _upsert(conn, insert, model.__table__, rows)


def _zone_refusal(conn: Any, zone: str, site: str) -> str | None:
    """Why a sensor or read point may not be in `zone` for a gateway of `site`, or None."""
    owner = conn.execute(select(Zone.site_id).where(Zone.id == zone)).scalar()
    if owner is None:
        return f"zone {zone} does not exist"
    return None if owner == site else f"zone {zone} is of site {owner}, not of {site}"


def _upsert(conn: Any, insert: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = insert(table)
    changed = {c: stmt.excluded[c] for c in rows[0] if c != "id"}
    conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=changed), rows)


def _propose(
    conn: Any,
    insert: Any,
    gateway: str,
    kind: str,
    subject: str,
    stored: dict[str, Any],
    described: dict[str, Any],
    at: datetime,
    outcome: StatusOutcome,
) -> None:
    """A pending proposal for each field the status describes otherwise; a pending one the
    status now agrees with is withdrawn."""
    table = MasterDataProposal.__table__
    for name, value in described.items():
        key = (table.c.subject_kind == kind, table.c.subject_id == subject, table.c.field == name)
        pending = (*key, table.c.state == "pending")
        if value == stored[name]:
            conn.execute(update(table).where(*pending).values(state="withdrawn", decided_at=at))
            continue
        outcome.proposed.append(f"{kind} {subject} {name}: {stored[name]!r} -> {value!r}")
        refreshed = conn.execute(
            update(table)
            .where(*pending)
            .values(proposed=value, current=stored[name], last_seen_at=at, gateway_id=gateway)
        )
        if refreshed.rowcount == 0:
            conn.execute(
                insert(table).values(
                    gateway_id=gateway,
                    subject_kind=kind,
                    subject_id=subject,
                    field=name,
                    current=stored[name],
                    proposed=value,
                    first_seen_at=at,
                    last_seen_at=at,
                    state="pending",
                )
            )


class ProposalClosed(ValueError):
    """A proposal that was decided or withdrawn already."""


def decide_proposal(session: Session, proposal_id: int, accept: bool) -> MasterDataProposal:
    """Accept (the change is made to master data, audited with the session's reason) or
    reject a pending proposal. LookupError if there is none; ProposalClosed if decided."""
    proposal = session.get(MasterDataProposal, proposal_id, with_for_update=True)
    if proposal is None:
        raise LookupError(f"proposal {proposal_id}")
    if proposal.state != "pending":
        raise ProposalClosed(f"proposal {proposal_id} is {proposal.state} already")
    if accept:
        model = Site if proposal.subject_kind == "site" else Zone
        row = session.get(model, proposal.subject_id)
        if row is None:
            raise LookupError(f"{proposal.subject_kind} {proposal.subject_id}")
        setattr(row, proposal.field, proposal.proposed)
        if isinstance(row, Zone):
            if row.low is not None and row.high is not None and row.low >= row.high:
                raise ValueError(f"zone {row.id}: low {row.low} would not be below high {row.high}")
            renew_set_up(session, row.id)  # the workers judge it by the new set-up
    proposal.state = "accepted" if accept else "rejected"
    proposal.decided_by = str(session.info.get("actor"))
    proposal.decided_at = utcnow()
    proposal.reason = session.info.get("reason")
    session.flush()
    return proposal
