"""The QA alert queue as the control room shows it, the actions taken from it, and the
alerts and notification channels the API lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

import cloud.service_layer.alerts as alerts_service
from cloud.adapters.orm.alerting import Alert, AlertComment, NotificationChannel
from cloud.adapters.orm.people import User
from cloud.adapters.orm.quality import Excursion
from cloud.adapters.orm.readings import Site
from cloud.service_layer.signatures import existing_user
from cloud.views.pages import where_given


@dataclass(frozen=True)
class CommentView:
    at: datetime
    author: str
    text: str


@dataclass(frozen=True)
class AlertRow:
    id: int
    severity: str
    title: str
    kind: str
    subject: str  # "excursion 12"
    state: str
    opened_at: datetime
    timezone: str
    escalation_level: int
    assignee: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    comments: list[CommentView]
    link: str | None = None  # the control room page about the subject


def alert_queue(session: Session, include_resolved: bool = False) -> list[AlertRow]:
    """Open and acknowledged alerts, most severe and oldest first (resolved ones on request)."""
    alerts = alerts_service.open_alerts(session)
    if include_resolved:
        done = session.scalars(
            select(Alert).where(Alert.state == "resolved").order_by(Alert.resolved_at.desc())
        ).all()
        alerts = [*alerts, *done[:50]]
    names = dict(session.execute(select(User.id, User.full_name)).all())
    zones = dict(session.execute(select(Site.id, Site.timezone)).all())
    excursion_zone = _excursion_zones(
        session, [a.subject_id for a in alerts if a.subject_kind == "excursion"]
    )
    notes: dict[int, list[CommentView]] = {}
    if alerts:
        for note in session.scalars(
            select(AlertComment)
            .where(AlertComment.alert_id.in_([a.id for a in alerts]))
            .order_by(AlertComment.at, AlertComment.id)
        ):
            notes.setdefault(note.alert_id, []).append(
                CommentView(note.at, names.get(note.user_id, str(note.user_id)), note.text)
            )
    return [
        AlertRow(
            id=a.id,
            severity=a.severity,
            title=a.title,
            kind=a.kind,
            subject=f"{a.subject_kind} {a.subject_id}",
            state=a.state,
            opened_at=a.opened_at,
            timezone=zones.get(a.site_id or "", "UTC"),
            escalation_level=a.escalation_level,
            assignee=names.get(a.assignee) if a.assignee else None,
            acknowledged_by=names.get(a.acknowledged_by) if a.acknowledged_by else None,
            acknowledged_at=a.acknowledged_at,
            comments=notes.get(a.id, []),
            link=_link(a, excursion_zone),
        )
        for a in alerts
    ]


PAGES = {
    "hold": "/holds",
    "expiry": "/expiry",
    "recall": "/trace",
    "gateway": "/",
    "user": "/accounts",  # a locked account: admins unlock it there
}


def _link(alert: Alert, excursion_zone: dict[str, str]) -> str | None:
    if alert.subject_kind == "excursion":
        zone = excursion_zone.get(alert.subject_id)
        return f"/zone?zone={zone}" if zone else None
    return PAGES.get(alert.subject_kind)


def _excursion_zones(session: Session, ids: list[str]) -> dict[str, str]:
    numbers = [int(i) for i in ids if i.isdigit()]
    if not numbers:
        return {}
    rows = session.execute(select(Excursion.id, Excursion.zone_id).where(Excursion.id.in_(numbers)))
    return {str(i): zone for i, zone in rows}


def open_alert_count(session: Session) -> int:
    return session.scalar(select(func.count()).where(Alert.state != "resolved")) or 0


def acknowledge_alert(session: Session, alert_id: int, username: str) -> Alert:
    return alerts_service.acknowledge(session, alert_id, existing_user(session, username))


def resolve_alert(session: Session, alert_id: int, username: str) -> Alert:
    return alerts_service.resolve(session, alert_id, existing_user(session, username))


def comment_alert(session: Session, alert_id: int, username: str, text: str) -> AlertComment:
    return alerts_service.comment(session, alert_id, existing_user(session, username), text)


def assign_alert(session: Session, alert_id: int, assignee: str | None) -> Alert:
    return alerts_service.assign(
        session, alert_id, existing_user(session, assignee) if assignee else None
    )


# --- the API's lists ----------------------------------------------------------------------


def alerts(
    state: str | None = None, severity: str | None = None, subject_kind: str | None = None
) -> Select[Alert]:
    """Alerts, newest first; state "unresolved" is every state but resolved."""
    query = select(Alert).order_by(Alert.opened_at.desc(), Alert.id.desc())
    if state == "unresolved":
        query = query.where(Alert.state != "resolved")
    elif state:
        query = query.where(Alert.state == state)
    return where_given(query, Alert, severity=severity, subject_kind=subject_kind)


def channels() -> Select[NotificationChannel]:
    """Notification channels in the order they were added."""
    return select(NotificationChannel).order_by(NotificationChannel.id)


def channel_named(session: Session, name: str) -> NotificationChannel | None:
    """The notification channel with this name, or None."""
    query = select(NotificationChannel).where(NotificationChannel.name == name)
    return session.scalars(query).first()
