"""Alerts: list, read, acknowledge, assign, comment, resolve; the excursion investigation
report; and the release gate's refusals as 409 problems listing every reason."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, current_app, g, jsonify
from pydantic import Field

from cloud.adapters.orm.alerting import Alert, NotificationChannel
from cloud.adapters.outbound import WebhookPolicy
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.pagination import Page, page_of
from cloud.entrypoints.api.problems import invalid, not_found, parse_body, parse_query, response
from cloud.service_layer import alerts as alerts_service
from cloud.service_layer.notifications import add_channel, notifications_of
from cloud.service_layer.release_gate import LoadRefused
from cloud.service_layer.reports import excursion_report
from cloud.service_layer.signatures import user_named
from cloud.views import alerts as alert_views
from cloud.views import people

bp = Blueprint("alerts", __name__, url_prefix="/api")


class AlertFilter(Page):
    state: Literal["open", "acknowledged", "resolved", "unresolved"] | None = None
    severity: Literal["info", "warning", "critical"] | None = None
    subject_kind: str | None = None


class Assignment(Body):
    username: str | None = None  # None: nobody


class NewChannel(Body):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["webhook", "email"]
    target: str = Field(min_length=3, max_length=500)
    secret: str | None = Field(None, min_length=16, max_length=200)
    min_severity: Literal["info", "warning", "critical"] = "warning"
    level: int = Field(0, ge=0, le=10)


class NewComment(Body):
    text: str = Field(min_length=1, max_length=4000)


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def alert_json(a: Alert, names: dict[int, str] | None = None) -> dict[str, Any]:
    names = names or {}
    return {
        "id": a.id,
        "kind": a.kind,
        "severity": a.severity,
        "title": a.title,
        "subject_kind": a.subject_kind,
        "subject_id": a.subject_id,
        "site_id": a.site_id,
        "state": a.state,
        "opened_at": _time(a.opened_at),
        "acknowledged_at": _time(a.acknowledged_at),
        "acknowledged_by": names.get(a.acknowledged_by or -1),
        "resolved_at": _time(a.resolved_at),
        "resolved_by": names.get(a.resolved_by or -1),
        "assignee": names.get(a.assignee or -1),
        "escalation_level": a.escalation_level,
        "escalated_at": _time(a.escalated_at),
    }


def _names() -> dict[int, str]:
    return people.usernames(get_db())


def _alert(alert_id: int) -> Alert:
    alert = get_db().get(Alert, alert_id)
    if alert is None:
        raise not_found(f"alert {alert_id}")
    return alert


def _full(alert: Alert) -> dict[str, Any]:
    db, names = get_db(), _names()
    # A delivery's error can carry what a receiver answered: for the admins who manage the
    # channels, not for everyone who reads alerts.
    errors = g.user is not None and g.user.role == "admin"
    return {
        **alert_json(alert, names),
        "comments": [
            {"at": _time(c.at), "user": names.get(c.user_id), "text": c.text}
            for c in alerts_service.comments(db, alert.id)
        ],
        "notifications": [
            {
                "channel_id": n.channel_id,
                "event": n.event,
                "state": n.state,
                "attempts": n.attempts,
                "last_status": n.last_status,
                "last_error": n.last_error if errors else None,
                "delivered_at": _time(n.delivered_at),
                "next_attempt_at": _time(n.next_attempt_at),
            }
            for n in notifications_of(db, alert.id)
        ],
    }


@bp.get("/alerts")
@endpoint("read", query=AlertFilter)
def list_alerts() -> Any:
    """Alerts, newest first; filter by state (or unresolved), severity, subject_kind."""
    given = parse_query(AlertFilter)
    query = alert_views.alerts(given.state, given.severity, given.subject_kind)
    names = _names()
    return page_of(query, given, lambda a: alert_json(a, names))


@bp.get("/alerts/<int:alert_id>")
@endpoint("read")
def get_alert(alert_id: int) -> Any:
    """One alert with its comments and notification deliveries."""
    return jsonify(_full(_alert(alert_id)))


@bp.post("/alerts/<int:alert_id>/acknowledge")
@endpoint("acknowledge", body=Body)
def acknowledge(alert_id: int) -> Any:
    """I have seen it: escalation and reminders stop."""
    parse_body(Body, optional=True)
    db = get_db()
    alerts_service.acknowledge(db, _alert(alert_id).id, g.user)
    db.commit()
    return jsonify(_full(_alert(alert_id)))


@bp.post("/alerts/<int:alert_id>/resolve")
@endpoint("resolve", body=Body)
def resolve(alert_id: int) -> Any:
    """The cause is dealt with."""
    parse_body(Body, optional=True)
    db = get_db()
    alerts_service.resolve(db, _alert(alert_id).id, g.user)
    db.commit()
    return jsonify(_full(_alert(alert_id)))


@bp.post("/alerts/<int:alert_id>/assign")
@endpoint("assign", body=Assignment)
def assign(alert_id: int) -> Any:
    """Give the alert to a user (username null: to nobody)."""
    given = parse_body(Assignment)
    db = get_db()
    alert = _alert(alert_id)
    user = None
    if given.username is not None:
        user = user_named(db, given.username)
        if user is None:
            raise not_found(f"user {given.username}")
    try:
        alerts_service.assign(db, alert.id, user)
    except ValueError as exc:
        return response(409, "refused", "Refused", str(exc))
    db.commit()
    return jsonify(_full(alert))


@bp.post("/alerts/<int:alert_id>/comments")
@endpoint("comment", body=NewComment, status=201)
def add_comment(alert_id: int) -> Any:
    """Add a comment to the alert's record."""
    given = parse_body(NewComment)
    db = get_db()
    alert = _alert(alert_id)
    alerts_service.comment(db, alert.id, g.user, given.text)
    db.commit()
    return jsonify(_full(alert)), 201


def channel_json(c: NotificationChannel) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "kind": c.kind,
        "target": c.target,
        "signed": c.secret is not None,  # the secret itself is never shown again
        "min_severity": c.min_severity,
        "level": c.level,
        "active": c.active,
    }


@bp.get("/notification-channels")
@endpoint("configuration", query=Page)
def list_channels() -> Any:
    """Where alerts are sent: webhooks and e-mail addresses, with severity and tier."""
    return page_of(alert_views.channels(), parse_query(Page), channel_json)


@bp.post("/notification-channels")
@endpoint("configuration", body=NewChannel, status=201)
def create_channel() -> Any:
    """Add a webhook (secret: the HMAC key) or an e-mail address; level 0 hears of openings,
    level n of escalations past tier n."""
    given = parse_body(NewChannel)
    db = get_db()
    if alert_views.channel_named(db, given.name) is not None:
        return response(409, "conflict", "Conflict", f"channel {given.name} exists already")
    try:
        channel = add_channel(
            db,
            given.name,
            given.kind,
            given.target,
            secret=given.secret,
            min_severity=given.min_severity,
            level=given.level,
            webhooks=WebhookPolicy.parse(current_app.config["WEBHOOK_ALLOW"]),
        )
    except ValueError as exc:
        raise invalid(422, str(exc), [{"field": "target", "message": str(exc)}]) from exc
    db.commit()
    return jsonify(channel_json(channel)), 201


@bp.delete("/notification-channels/<int:channel_id>")
@endpoint("configuration")
def deactivate_channel(channel_id: int) -> Any:
    """Stop sending to a channel (kept, with its deliveries; an audited change: X-Reason)."""
    db = get_db()
    channel = db.get(NotificationChannel, channel_id)
    if channel is None:
        raise not_found(f"notification channel {channel_id}")
    channel.active = False
    db.commit()
    return "", 204


@bp.get("/excursions/<int:excursion_id>/report.pdf")
@endpoint("read")
def excursion_pdf(excursion_id: int) -> Any:
    """The excursion investigation report (PDF): readings chart, exposed batches, timeline."""
    try:
        pdf = excursion_report(get_db(), excursion_id)
    except LookupError as exc:
        raise not_found(f"excursion {excursion_id}") from exc
    headers = {"Content-Disposition": f'inline; filename="excursion-{excursion_id}.pdf"'}
    return Response(pdf, mimetype="application/pdf", headers=headers)


@bp.app_errorhandler(LoadRefused)
def _load_refused(exc: LoadRefused) -> Response:
    return response(
        409,
        "release-blocked",
        "Release gate",
        str(exc),
        reasons=[r.as_dict() for r in exc.reasons],
    )
