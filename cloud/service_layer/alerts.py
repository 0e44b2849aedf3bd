"""Alerts in the database: raised once per subject, acknowledged, assigned, commented,
resolved, escalated and reminded; each step queues the notifications it implies."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from sqlalchemy import Select, String, and_, cast, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.adapters.orm.alerting import Alert, AlertComment, NotificationChannel
from cloud.adapters.orm.people import User
from cloud.adapters.orm.quality import Excursion, Hold
from cloud.adapters.orm.readings import Zone
from cloud.adapters.orm.traceability import Batch
from cloud.domain import alerts as domain
from cloud.domain.clock import utcnow
from cloud.service_layer.notifications import active_channels, enqueue

log = logging.getLogger(__name__)


class UnknownAlert(LookupError):
    """An alert id that does not exist."""


def raise_alert(
    session: Session,
    *,
    kind: str,
    severity: str,
    title: str,
    subject_kind: str,
    subject_id: str,
    site_id: str | None = None,
    now: datetime | None = None,
    fresh: bool = False,
    channels: list[NotificationChannel] | None = None,
) -> Alert | None:
    """Open an alert unless one exists for the subject and kind; None if it did already.

    `fresh`: the subject was created in this transaction, so no alert can name it yet, in
    this process or another: the look-up and the savepoint are skipped.
    """
    key = (subject_kind, subject_id, kind)
    if fresh:
        alert = _new_alert(kind, severity, title, subject_kind, subject_id, site_id, now)
        session.add(alert)
        session.flush()
        return _announce(session, alert, channels)
    if _existing(session, *key) is not None:
        return None
    alert = _new_alert(kind, severity, title, subject_kind, subject_id, site_id, now)
    try:
        with session.begin_nested():  # another process may raise the same alert meanwhile
            session.add(alert)
            session.flush()
    except IntegrityError:
        log.info("alert %s/%s/%s raised concurrently", *key)
        return None
    return _announce(session, alert, channels)


def _new_alert(
    kind: str,
    severity: str,
    title: str,
    subject_kind: str,
    subject_id: str,
    site_id: str | None = None,
    now: datetime | None = None,
) -> Alert:
    return Alert(
        kind=kind,
        severity=severity,
        title=title[:300],
        subject_kind=subject_kind,
        subject_id=subject_id,
        site_id=site_id,
        state=domain.AlertState.OPEN,
        opened_at=now or utcnow(),
        escalation_level=0,
    )


def _announce(
    session: Session,
    alert: Alert,
    channels: list[NotificationChannel] | None,
    flush: bool = True,
) -> Alert:
    enqueue(
        session,
        alert,
        "opened",
        0,
        exact=True,
        now=alert.opened_at,
        channels=channels,
        flush=flush,
    )
    log.info("alert %s opened: %s (%s)", alert.id, alert.title, alert.severity)
    return alert


def _existing(session: Session, subject_kind: str, subject_id: str, kind: str) -> Alert | None:
    return session.scalars(
        select(Alert).where(
            Alert.subject_kind == subject_kind, Alert.subject_id == subject_id, Alert.kind == kind
        )
    ).first()


def _sites_of(session: Session, zone_ids: set[str]) -> dict[str, str]:
    if not zone_ids:
        return {}
    return dict(session.execute(select(Zone.id, Zone.site_id).where(Zone.id.in_(zone_ids))).all())


def _lots_of(session: Session, batch_ids: set[int]) -> dict[int, str]:
    if not batch_ids:
        return {}
    return dict(session.execute(select(Batch.id, Batch.lot).where(Batch.id.in_(batch_ids))).all())


class _Wanted(TypedDict):
    """An alert raise_alerts means to raise: the arguments of raise_alert."""

    kind: str
    severity: str
    title: str
    subject_kind: str
    subject_id: str
    site_id: NotRequired[str | None]
    now: datetime | None


def raise_alerts(
    session: Session,
    excursions: Iterable[Excursion],
    holds: Iterable[Hold],
    now: datetime | None = None,
    fresh: Iterable[Excursion | Hold] = (),
    channels: list[NotificationChannel] | None = None,
    sites: dict[str, str] | None = None,
    lots: dict[int, str] | None = None,
) -> list[Alert]:
    """One alert per new excursion and per new hold; raising the same ones again adds none.

    `fresh`: excursions and holds created in this transaction (see raise_alert); their
    alerts are inserted together, in one statement. `channels` (the active ones), `sites`
    (of the excursions' zones) and `lots` (of the holds' batches): what the caller has of
    them already; the rest is read.
    """
    created = {id(subject) for subject in fresh}
    excursions = [e for e in excursions if not e.suppressed_reason]  # recorded, not a call
    holds = list(holds)
    if not (excursions or holds):
        return []
    if channels is None:
        channels = active_channels(session)
    if sites is None:
        sites = _sites_of(session, {e.zone_id for e in excursions})
    lots = dict(lots or {})
    lots.update(_lots_of(session, {h.batch_id for h in holds} - set(lots)))
    wanted: list[tuple[_Wanted, bool]] = []
    for exc in excursions:
        title = f"{exc.level.capitalize()}: {exc.kind.replace('_', ' ')} excursion in {exc.zone_id}"
        if exc.peak is not None and exc.limit is not None:
            title += f" (peak {exc.peak:g}, limit {exc.limit:g})"
        if exc.evidence_note:  # evidence used, and marked (decision 0027)
            title += f" - {exc.evidence_note}"
        alert: _Wanted = {
            "kind": f"excursion_{exc.kind}",
            "severity": domain.excursion_severity(exc.kind, exc.level),
            "title": title,
            "subject_kind": "excursion",
            "subject_id": str(exc.id),
            "site_id": sites.get(exc.zone_id),
            "now": now or exc.detected_at,
        }
        wanted.append((alert, id(exc) in created))
    for hold in holds:
        alert = {
            "kind": "hold",
            "severity": domain.Severity.CRITICAL,
            "title": f"Batch {lots.get(hold.batch_id, hold.batch_id)} on hold: {hold.reason}"
            + (f" - {hold.evidence_note}" if hold.evidence_note else ""),
            "subject_kind": "hold",
            "subject_id": str(hold.id),
            "now": now or hold.opened_at,
        }
        wanted.append((alert, id(hold) in created))
    new = [_new_alert(**alert) for alert, is_fresh in wanted if is_fresh]
    if new:  # no alert can name a subject created in this transaction: one insert for all
        session.add_all(new)
        session.flush()
        for opened in new:
            _announce(session, opened, channels, flush=False)
        session.flush()
    raised = list(new)
    for alert, is_fresh in wanted:
        if not is_fresh:
            found = raise_alert(session, **alert, channels=channels)
            if found is not None:
                raised.append(found)
    return raised


def _without_alert(model: Any, subject_kind: str) -> Select[Any]:
    """Rows of `model` (excursions, holds) that no alert names yet."""
    named = and_(Alert.subject_kind == subject_kind, Alert.subject_id == cast(model.id, String))
    return select(model).outerjoin(Alert, named).where(Alert.id.is_(None)).order_by(model.id)


def raise_pending(session: Session, now: datetime) -> list[Alert]:
    """Alerts for excursions and open holds that have none yet (the scheduler's sweep, so no
    excursion goes unannounced whoever stored it)."""
    unsuppressed = Excursion.suppressed_reason.is_(None)
    excursions = session.scalars(_without_alert(Excursion, "excursion").where(unsuppressed))
    undecided = Hold.status.in_(("open", "investigating"))
    holds = session.scalars(_without_alert(Hold, "hold").where(undecided))
    return raise_alerts(session, list(excursions), list(holds), now=now)


def get_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise UnknownAlert(f"alert {alert_id} does not exist")
    return alert


def facts(alert: Alert) -> domain.AlertFacts:
    return domain.AlertFacts(
        id=alert.id,
        state=alert.state,
        opened_at=alert.opened_at,
        escalation_level=alert.escalation_level,
        last_reminded_at=alert.last_reminded_at,
    )


def acknowledge(session: Session, alert_id: int, user: User, now: datetime | None = None) -> Alert:
    """The user has seen the alert: escalation and reminders stop."""
    alert = get_alert(session, alert_id)
    alert.state = domain.step(facts(alert), "acknowledge").state
    alert.acknowledged_at, alert.acknowledged_by = now or utcnow(), user.id
    session.flush()
    return alert


def resolve(session: Session, alert_id: int, user: User, now: datetime | None = None) -> Alert:
    """The cause is dealt with (an unacknowledged alert is acknowledged by resolving it)."""
    alert = get_alert(session, alert_id)
    alert.state = domain.step(facts(alert), "resolve").state
    alert.resolved_at, alert.resolved_by = now or utcnow(), user.id
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = alert.resolved_at, user.id
    session.flush()
    return alert


def assign(session: Session, alert_id: int, assignee: User | None) -> Alert:
    """Give the alert to a person (None: to nobody)."""
    alert = get_alert(session, alert_id)
    if alert.state == domain.AlertState.RESOLVED:
        raise ValueError(f"alert {alert_id} is resolved: it cannot be assigned")
    alert.assignee = assignee.id if assignee else None
    session.flush()
    return alert


def comment(
    session: Session, alert_id: int, user: User, text: str, now: datetime | None = None
) -> AlertComment:
    if not text.strip():
        raise ValueError("a comment needs text")
    get_alert(session, alert_id)
    note = AlertComment(alert_id=alert_id, user_id=user.id, at=now or utcnow(), text=text)
    session.add(note)
    session.flush()
    return note


def comments(session: Session, alert_id: int) -> list[AlertComment]:
    query = select(AlertComment).where(AlertComment.alert_id == alert_id)
    return list(session.scalars(query.order_by(AlertComment.at, AlertComment.id)))


def open_alerts(session: Session) -> list[Alert]:
    """Alerts not yet resolved, the most severe and oldest first."""
    rows = session.scalars(select(Alert).where(Alert.state != domain.AlertState.RESOLVED))
    rank = domain.SEVERITY_RANK
    return sorted(rows, key=lambda a: (-rank[domain.Severity(a.severity)], a.opened_at, a.id))


def alerts_about(session: Session, subject_kind: str, subject_ids: Iterable[str]) -> list[Alert]:
    query = select(Alert).where(
        Alert.subject_kind == subject_kind, Alert.subject_id.in_(list(subject_ids))
    )
    return list(session.scalars(query.order_by(Alert.opened_at, Alert.id)))


def _unacknowledged(session: Session) -> list[Alert]:
    query = select(Alert).where(Alert.state == domain.AlertState.OPEN).order_by(Alert.id)
    return list(session.scalars(query))


def escalate_due(
    session: Session, now: datetime, policy: domain.EscalationPolicy | None = None
) -> list[Alert]:
    """Raise unacknowledged alerts to the tier now due; queue the new tier's notifications."""
    policy = policy or domain.EscalationPolicy()
    escalated = []
    for alert in _unacknowledged(session):
        level = domain.escalation(facts(alert), policy, now)
        if level is None:
            continue
        for reached in range(alert.escalation_level + 1, level + 1):
            enqueue(session, alert, f"escalated:{reached}", reached, exact=True, now=now)
        alert.escalation_level, alert.escalated_at = level, now
        escalated.append(alert)
        log.info("alert %s escalated to level %s", alert.id, level)
    session.flush()
    return escalated


def remind_due(
    session: Session, now: datetime, policy: domain.EscalationPolicy | None = None
) -> list[Alert]:
    """Remind every channel up to the alert's tier of an alert still unacknowledged."""
    policy = policy or domain.EscalationPolicy()
    reminded = []
    for alert in _unacknowledged(session):
        if not domain.reminder_due(facts(alert), policy, now):
            continue
        event = f"reminder:{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        enqueue(session, alert, event, alert.escalation_level, exact=False, now=now)
        alert.last_reminded_at = now
        reminded.append(alert)
    session.flush()
    return reminded
