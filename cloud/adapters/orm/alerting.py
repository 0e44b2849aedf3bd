"""Alerts and what follows them: comments, notification channels and deliveries, recalls,
and the temperature classes each site is approved to receive.

States and transitions live in cloud.domain.alerts; the services are cloud.service_layer.alerts,
cloud.service_layer.notifications and cloud.service_layer.recall.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.adapters.orm.audit import audited
from cloud.adapters.orm.base import Base, one_of
from cloud.domain.clock import utcnow

ALERT_STATES = ("open", "acknowledged", "resolved")
SEVERITIES = ("info", "warning", "critical")
SUBJECT_KINDS = ("excursion", "hold", "expiry", "recall", "gateway", "zone", "user")
CHANNEL_KINDS = ("webhook", "email")
DELIVERY_STATES = ("pending", "delivered", "failed")
RECALL_STATES = ("open", "closed")


class Alert(Base):
    """Something a person must look at: open -> acknowledged -> resolved."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(300))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64))
    site_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assignee: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None]
    last_reminded_at: Mapped[datetime | None]

    __table_args__ = (
        # One alert per subject and kind: raising again is a no-op.
        UniqueConstraint("subject_kind", "subject_id", "kind", name="alerts_subject"),
        one_of("state", ALERT_STATES, "alerts_state"),
        one_of("severity", SEVERITIES, "alerts_severity"),
        one_of("subject_kind", SUBJECT_KINDS, "alerts_subject_kind"),
        Index("alerts_state_opened", "state", "opened_at"),
    )


class AlertComment(Base):
    __tablename__ = "alert_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)


class NotificationChannel(Base):
    """Where alerts go: a webhook URL or an e-mail address, from a severity and a tier on."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(500))  # URL or address
    secret: Mapped[str | None] = mapped_column(String(200))  # webhook HMAC key
    min_severity: Mapped[str] = mapped_column(String(8), default="warning")
    level: Mapped[int] = mapped_column(Integer, default=0)  # 0: on opening; n: escalation n
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (
        one_of("kind", CHANNEL_KINDS, "notification_channels_kind"),
        one_of("min_severity", SEVERITIES, "notification_channels_severity"),
    )


# The webhook secret is an HMAC key: it never lands in the audit trail.
audited(NotificationChannel, redact={"secret"})


class Notification(Base):
    """One message to one channel, and every attempt to deliver it."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("notification_channels.id"))
    event: Mapped[str] = mapped_column(String(32))  # opened | escalated:N | reminder:N
    payload: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)  # HTTP status or SMTP code
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("alert_id", "channel_id", "event", name="notifications_once"),
        one_of("state", DELIVERY_STATES, "notifications_state"),
        Index("notifications_due", "state", "next_attempt_at"),
    )


@audited
class Recall(Base):
    """QA's recall of a batch, opened with a signature."""

    __tablename__ = "recalls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(8), default="open")
    opened_at: Mapped[datetime]
    opened_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    previous_status: Mapped[str] = mapped_column(String(16))  # the batch's, before the recall

    __table_args__ = (one_of("state", RECALL_STATES, "recalls_state"),)


@audited
class RecallItem(Base):
    """Where one item of a recalled batch was when the recall opened."""

    __tablename__ = "recall_items"

    recall_id: Mapped[int] = mapped_column(ForeignKey("recalls.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    disposition: Mapped[str] = mapped_column(String(16))  # frozen | in_transit | at_customer
    zone_id: Mapped[str | None] = mapped_column(String(64))
    site_id: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    shipment_id: Mapped[str | None] = mapped_column(String(64))
    since: Mapped[datetime | None]


@audited
class SiteApproval(Base):
    """A site approved to receive products of one temperature class."""

    __tablename__ = "site_approvals"

    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    temperature_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    approved_at: Mapped[datetime] = mapped_column(default=utcnow)
