"""Notifications: queued per alert and channel, delivered by webhook (HTTP POST with an
HMAC-signed body) or e-mail (SMTP), retried with exponential backoff; every attempt's
outcome is kept on the notification row."""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.alerting import Alert, Notification, NotificationChannel
from cloud.adapters.outbound import TargetRefused, WebhookPolicy
from cloud.domain.alerts import Backoff, recipients, webhook_signature

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status: int | None = None  # HTTP status or SMTP reply code
    error: str | None = None


Sender = Callable[[NotificationChannel, Notification, datetime], Outcome]


def alert_payload(alert: Alert, event: str) -> dict[str, Any]:
    return {
        "event": event,
        "alert": {
            "id": alert.id,
            "kind": alert.kind,
            "severity": alert.severity,
            "title": alert.title,
            "subject_kind": alert.subject_kind,
            "subject_id": alert.subject_id,
            "site_id": alert.site_id,
            "state": alert.state,
            "opened_at": alert.opened_at.isoformat(),
            "escalation_level": alert.escalation_level,
        },
    }


def active_channels(session: Session) -> list[NotificationChannel]:
    return list(session.scalars(select(NotificationChannel).where(NotificationChannel.active)))


def enqueue(
    session: Session,
    alert: Alert,
    event: str,
    level: int,
    *,
    exact: bool,
    now: datetime,
    channels: list[NotificationChannel] | None = None,
    flush: bool = True,
) -> list[Notification]:
    """Queue `event` of `alert` for each active channel its severity and tier reach.

    `channels`: the active channels, when the caller read them once for several alerts;
    `flush=False`: the caller flushes them with others.
    """
    if channels is None:
        channels = active_channels(session)
    keyed = {c.id: c for c in channels}
    ids = recipients(
        [(c.id, c.min_severity, c.level) for c in keyed.values()],
        alert.severity,
        level,
        exact=exact,
    )
    queued = [
        Notification(
            alert_id=alert.id,
            channel_id=ident,
            event=event,
            payload=alert_payload(alert, event),
            state="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        for ident in sorted(ids)
    ]
    session.add_all(queued)
    if flush:
        session.flush()
    return queued


# --- channels -----------------------------------------------------------------------------


def body_of(notification: Notification) -> bytes:
    return json.dumps(notification.payload, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class WebhookSender:
    """POST the payload as JSON, signed with the channel's secret; 2xx is delivered.

    The target is checked against the policy before every delivery (cloud.adapters.outbound)
    and redirects are not followed: a 3xx is a failed delivery that says where it pointed."""

    timeout_s: float = 10.0
    policy: WebhookPolicy = field(default_factory=WebhookPolicy)

    def __call__(self, channel: NotificationChannel, note: Notification, now: datetime) -> Outcome:
        try:
            self.policy.check(channel.target)
        except TargetRefused as exc:
            return Outcome(False, None, f"not sent: {exc}")
        body = body_of(note)
        timestamp = str(int(now.timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "coldchain-alerts/1",
            "X-Coldchain-Event": note.event,
            "X-Coldchain-Delivery": str(note.id),  # the same on every retry: dedupe on it
            "X-Coldchain-Timestamp": timestamp,
        }
        if channel.secret:
            headers["X-Coldchain-Signature"] = webhook_signature(channel.secret, timestamp, body)
        try:
            with httpx.Client(follow_redirects=False, timeout=self.timeout_s) as client:
                reply = client.post(channel.target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}")
        if reply.is_redirect:
            where = reply.headers.get("Location", "?")
            return Outcome(
                False,
                reply.status_code,
                f"HTTP {reply.status_code} to {where}: redirects are not followed",
            )
        if not reply.is_success:
            return Outcome(
                False, reply.status_code, f"HTTP {reply.status_code} {reply.reason_phrase}"
            )
        return Outcome(True, reply.status_code)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "coldchain@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0
    ca_file: str | None = None  # a private CA's certificates; else the system's

    def __post_init__(self) -> None:
        if self.username and not self.starttls:
            raise ValueError(
                "SMTP login without STARTTLS would send the password in clear: "
                "turn STARTTLS on or drop the username"
            )

    def tls_context(self) -> ssl.SSLContext:
        """Certificates and the host name verified (never CERT_NONE)."""
        return ssl.create_default_context(cafile=self.ca_file)


def email_message(sender: str, to: str, note: Notification) -> EmailMessage:
    alert = note.payload["alert"]
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"] = f"[{alert['severity'].upper()}] {alert['title']}"
    message["X-Coldchain-Event"] = note.event
    lines = [
        alert["title"],
        "",
        f"Event: {note.event}",
        f"Severity: {alert['severity']}",
        f"Subject: {alert['subject_kind']} {alert['subject_id']}",
        f"Site: {alert['site_id'] or '-'}",
        f"Opened: {alert['opened_at']}",
        f"Escalation level: {alert['escalation_level']}",
        f"Alert id: {alert['id']}",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


@dataclass(frozen=True, slots=True)
class EmailSender:
    """Send a plain-text message through the configured SMTP server."""

    settings: SmtpSettings = field(default_factory=SmtpSettings)

    def __call__(self, channel: NotificationChannel, note: Notification, now: datetime) -> Outcome:
        s = self.settings
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
                if s.starttls:  # verified: a server without a valid certificate gets nothing
                    smtp.starttls(context=s.tls_context())
                if s.username:
                    smtp.login(s.username, s.password or "")
                refused = smtp.send_message(email_message(s.sender, channel.target, note))
        except smtplib.SMTPResponseException as exc:
            return Outcome(False, exc.smtp_code, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}")
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}")
        if refused:
            return Outcome(False, None, f"recipients refused: {refused}")
        return Outcome(True, 250)


def default_senders(
    smtp: SmtpSettings | None = None, webhooks: WebhookPolicy | None = None
) -> dict[str, Sender]:
    return {
        "webhook": WebhookSender(policy=webhooks or WebhookPolicy()),
        "email": EmailSender(smtp or SmtpSettings()),
    }


# --- delivery -----------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def due(session: Session, now: datetime, limit: int = 200) -> list[Notification]:
    query = (
        select(Notification)
        .where(Notification.state == "pending")
        .where(or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now))
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def deliver_due(
    session: Session,
    now: datetime,
    senders: Mapping[str, Sender] | None = None,
    backoff: Backoff | None = None,
) -> DeliveryReport:
    """Try every notification that is due; commit after each so an attempt is never lost."""
    senders = senders if senders is not None else default_senders()
    backoff = backoff or Backoff()
    report = DeliveryReport()
    for note in due(session, now):
        channel = session.get(NotificationChannel, note.channel_id)
        assert channel is not None  # a foreign key
        send = senders.get(channel.kind)
        outcome = (
            send(channel, note, now)
            if send
            else Outcome(False, None, f"no sender for {channel.kind}")
        )
        note.attempts += 1
        note.last_status, note.last_error = outcome.status, outcome.error
        if outcome.ok:
            note.state, note.delivered_at, note.next_attempt_at = "delivered", now, None
            report.delivered += 1
        else:
            retry = backoff.next_attempt(note.attempts, now)
            note.next_attempt_at = retry
            if retry is None:
                note.state = "failed"
                report.failed += 1
                log.warning(
                    "notification %s to %s failed for good after %s attempts: %s",
                    note.id,
                    channel.name,
                    note.attempts,
                    outcome.error,
                )
            else:
                report.retrying += 1
                log.info(
                    "notification %s to %s failed (%s); retry at %s",
                    note.id,
                    channel.name,
                    outcome.error,
                    retry.isoformat(),
                )
        session.commit()
    return report


def add_channel(
    session: Session,
    name: str,
    kind: str,
    target: str,
    *,
    secret: str | None = None,
    min_severity: str = "warning",
    level: int = 0,
    webhooks: WebhookPolicy | None = None,
) -> NotificationChannel:
    """Register a webhook URL or an e-mail address to hear of alerts; a webhook target must
    pass the policy (public addresses, or allow-listed)."""
    if kind == "webhook":
        try:
            (webhooks or WebhookPolicy()).check(target)
        except TargetRefused as exc:
            raise ValueError(f"channel {name}: {exc}") from exc
    if kind == "email" and "@" not in target:
        raise ValueError(f"channel {name}: e-mail target {target!r} is not an address")
    if level < 0:
        raise ValueError(f"channel {name}: level must be 0 or more, got {level}")
    channel = NotificationChannel(
        name=name,
        kind=kind,
        target=target,
        secret=secret,
        min_severity=min_severity,
        level=level,
        active=True,
    )
    session.add(channel)
    session.flush()
    return channel


def notifications_of(session: Session, alert_id: int) -> list[Notification]:
    query = select(Notification).where(Notification.alert_id == alert_id)
    return list(session.scalars(query.order_by(Notification.id)))
