"""Sequence continuity per gateway: ingest keeps the ranges of seqs received; the scheduler
turns old gaps the gateway's reported drops do not explain into alerts, and numbering that
went backwards into an alert of its own.

`record_sequences` and `note_heartbeats` run in the ingest write transaction
(cloud/service_layer/store.py); `check_sequences` runs on every scheduler tick. The range
arithmetic is cloud.domain.sequences.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.readings import Gateway, SequenceGap, SequenceRange
from cloud.domain import sequences
from cloud.domain.alerts import AlertState
from cloud.domain.clock import utcnow
from cloud.service_layer.alerts import raise_alert
from edge import wire

log = logging.getLogger(__name__)
DEFAULT_GRACE = timedelta(minutes=15)
# A gap this wide is no loss of records but a new buffer file: its numbering is seeded from
# the clock in microseconds (decision 0002), far above the old one.
NEW_BUFFER_JUMP = 10**9
GAP_KIND, JUMP_KIND, RESTART_KIND = "seq_gap", "seq_jump", "seq_restart"


def record_sequences(
    conn: Any, seqs: Mapping[str, Iterable[int]], received: Mapping[str, datetime]
) -> None:
    """Merge the seqs of a batch into each gateway's ranges received (ingest transaction);
    `received`: when the batch's messages of each gateway arrived (now if not given).

    The gateways' rows are locked first, in id order, so two workers merging ranges of one
    gateway take turns (PostgreSQL; SQLite has one writer anyway).
    """
    gateways = sorted(g for g, s in seqs.items() if s)
    if not gateways:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(
            select(Gateway.id)
            .where(Gateway.id.in_(gateways))
            .order_by(Gateway.id)
            .with_for_update()
        )
    table = SequenceRange.__table__
    for gateway in gateways:
        runs = sequences.runs(seqs[gateway])
        lo, hi = runs[0][0] - 1, runs[-1][1] + 1
        stored = conn.execute(
            select(table.c.first, table.c.last, table.c.since).where(
                table.c.gateway_id == gateway, table.c.first <= hi, table.c.last >= lo
            )
        ).all()
        have = [(r.first, r.last) for r in stored]
        merged = sequences.merge(have, runs)
        if merged == sorted(have):
            continue  # every seq was received before: a redelivery
        if stored:
            conn.execute(
                delete(table).where(
                    table.c.gateway_id == gateway, table.c.first.in_([r.first for r in stored])
                )
            )
        rows, at = [], received.get(gateway) or utcnow()
        for first, last in merged:
            since = min((r.since for r in stored if first <= r.first <= last), default=at)
            rows.append({"gateway_id": gateway, "first": first, "last": last, "since": since})
        conn.execute(insert(table), rows)


def note_heartbeats(conn: Any, beats: Iterable[wire.Heartbeat]) -> None:
    """Store each heartbeat's health on its gateway; numbering gone backwards is noted.

    A buffer's numbering never goes back (SQLite AUTOINCREMENT, decision 0002): a heartbeat
    whose next seq is below the one of an earlier heartbeat comes from another buffer, an
    old image restored or a replaced SD card with its clock set back. Heartbeats older than
    the stored one (a redelivery) change nothing.
    """
    for beat in sorted(beats, key=lambda b: (b.gateway, b.at)):
        row = conn.execute(
            select(Gateway.last_heartbeat, Gateway.next_seq).where(Gateway.id == beat.gateway)
        ).first()
        if row is None or (row.last_heartbeat is not None and row.last_heartbeat >= beat.at):
            continue
        values: dict[str, Any] = {
            "last_heartbeat": beat.at,
            "buffer_depth": beat.buffer_depth,
            "oldest_unsent_age_s": beat.oldest_unsent_age_s,
            "dropped_records": beat.dropped_records,
            "disk_free_bytes": beat.disk_free_bytes,
            "clock_synchronised": beat.clock_synchronised,
            "next_seq": beat.next_seq,
        }
        if beat.next_seq is not None and row.next_seq is not None and beat.next_seq < row.next_seq:
            log.warning(
                "gateway %s: numbering restarted at %d, below %d",
                beat.gateway,
                beat.next_seq,
                row.next_seq,
            )
            values |= {
                "seq_restart_at": beat.at,
                "seq_restart_from": beat.next_seq,
                "seq_restart_below": row.next_seq,
            }
        conn.execute(update(Gateway).where(Gateway.id == beat.gateway).values(**values))


def gateway_ranges(session: Session, gateway: str) -> list[sequences.Range]:
    table = SequenceRange.__table__
    rows = session.execute(
        select(table.c.first, table.c.last)
        .where(table.c.gateway_id == gateway)
        .order_by(table.c.first)
    )
    return [(r.first, r.last) for r in rows]


def gaps_of(gateway: Gateway, ranges: list[sequences.Range]) -> list[sequences.Gap]:
    """The gateway's missing ranges, each marked covered or not by its reported drops."""
    return sequences.assess(ranges, gateway.dropped_records or 0, NEW_BUFFER_JUMP)[0]


@dataclass
class SequenceReport:
    raised: list[Alert] = field(default_factory=list)
    closed: list[Alert] = field(default_factory=list)


def check_sequences(
    session: Session, now: datetime, grace: timedelta = DEFAULT_GRACE
) -> SequenceReport:
    """Raise an alert for each gap open longer than `grace` that reported drops do not
    explain, and for numbering gone backwards; close the alerts of gaps filled since."""
    report = SequenceReport()
    for gateway in session.scalars(select(Gateway).order_by(Gateway.id)):
        ranges = (
            session.execute(
                select(SequenceRange)
                .where(SequenceRange.gateway_id == gateway.id)
                .order_by(SequenceRange.first)
            )
            .scalars()
            .all()
        )
        merged = [(r.first, r.last) for r in ranges]
        since = {r.first: r.since for r in ranges}
        gaps, jumps = sequences.assess(merged, gateway.dropped_records or 0, NEW_BUFFER_JUMP)
        for gap in gaps:
            opened = since[gap.last + 1]  # the records above the gap arrived then
            if gap.covered or now - opened < grace:
                continue
            _raise_gap(session, gateway, gap, now, report)
        for first, last in jumps:
            alert = raise_alert(
                session,
                kind=f"{JUMP_KIND}:{first}",
                severity="warning",
                title=f"gateway {gateway.id}: numbering jumped from {first - 1} to {last + 1} "
                "(a new buffer file?): records the old buffer had not sent are lost",
                subject_kind="gateway",
                subject_id=gateway.id,
                site_id=gateway.site_id,
                now=now,
            )
            if alert is not None:
                report.raised.append(alert)
        if gateway.seq_restart_from is not None:
            alert = raise_alert(
                session,
                kind=f"{RESTART_KIND}:{gateway.seq_restart_from}",
                severity="critical",
                title=f"gateway {gateway.id}: numbering restarted at {gateway.seq_restart_from}, "
                f"below {gateway.seq_restart_below} already used (an old image or a replaced "
                "SD card?): its records with numbers received before are discarded as repeats",
                subject_kind="gateway",
                subject_id=gateway.id,
                site_id=gateway.site_id,
                now=now,
            )
            if alert is not None:
                report.raised.append(alert)
        _close_filled(session, gateway, merged, now, report)
    session.flush()
    return report


def _raise_gap(
    session: Session, gateway: Gateway, gap: sequences.Gap, now: datetime, report: SequenceReport
) -> None:
    if session.get(SequenceGap, (gateway.id, gap.first)) is not None:
        return  # alerted already (the gap may have shrunk since: its first seq names it)
    alert = raise_alert(
        session,
        kind=f"{GAP_KIND}:{gap.first}",
        severity="warning",
        title=f"gateway {gateway.id}: records {gap.label()} missing ({gap.count} records)",
        subject_kind="gateway",
        subject_id=gateway.id,
        site_id=gateway.site_id,
        now=now,
    )
    session.add(
        SequenceGap(
            gateway_id=gateway.id,
            first=gap.first,
            last=gap.last,
            alert_id=None if alert is None else alert.id,
            raised_at=now,
        )
    )
    if alert is not None:
        report.raised.append(alert)


def _close_filled(
    session: Session,
    gateway: Gateway,
    merged: list[sequences.Range],
    now: datetime,
    report: SequenceReport,
) -> None:
    """A gap alerted whose records have all arrived since: the alert resolves itself and its
    title says the records arrived late."""
    still = sequences.missing(merged)
    for gap in session.scalars(
        select(SequenceGap).where(
            SequenceGap.gateway_id == gateway.id, SequenceGap.closed_at.is_(None)
        )
    ):
        if any(a <= gap.last and b >= gap.first for a, b in still):
            continue
        gap.closed_at = now
        alert = None if gap.alert_id is None else session.get(Alert, gap.alert_id)
        if alert is None or alert.state == AlertState.RESOLVED:
            continue
        alert.title = f"{alert.title} - arrived late, by {now:%Y-%m-%d %H:%M} UTC"[:300]
        alert.state, alert.resolved_at = AlertState.RESOLVED, now
        if alert.acknowledged_at is None:
            alert.acknowledged_at = now
        report.closed.append(alert)
        log.info(
            "alert %s resolved: the records of gap %d-%d arrived", alert.id, gap.first, gap.last
        )
