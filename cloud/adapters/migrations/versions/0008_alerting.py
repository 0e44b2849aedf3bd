"""alerting: alerts, comments, notification channels and deliveries, recalls, site
approvals for temperature classes, and per-product expiry warning tiers

Revision ID: 0008_alerting
Revises: 0005_api_tokens
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_alerting"
down_revision = "0005_api_tokens"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def _check(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=name)


SEVERITIES = ("info", "warning", "critical")


def upgrade() -> None:
    op.add_column("products", sa.Column("expiry_warning_days", sa.String(32), nullable=True))
    op.create_table(
        "alerts",
        _id(),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        _time("opened_at", nullable=False),
        _time("acknowledged_at"),
        sa.Column("acknowledged_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        _time("resolved_at"),
        sa.Column("resolved_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("assignee", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        _time("escalated_at"),
        _time("last_reminded_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject_kind", "subject_id", "kind", name="alerts_subject"),
        _check("state", ("open", "acknowledged", "resolved"), "alerts_state"),
        _check("severity", SEVERITIES, "alerts_severity"),
        _check(
            "subject_kind",
            ("excursion", "hold", "expiry", "recall", "gateway"),
            "alerts_subject_kind",
        ),
    )
    op.create_index("alerts_state_opened", "alerts", ["state", "opened_at"])
    op.create_table(
        "alert_comments",
        _id(),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        _time("at", nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_comments_alert_id", "alert_comments", ["alert_id"])
    op.create_table(
        "notification_channels",
        _id(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("secret", sa.String(200), nullable=True),
        sa.Column("min_severity", sa.String(8), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        _check("kind", ("webhook", "email"), "notification_channels_kind"),
        _check("min_severity", SEVERITIES, "notification_channels_severity"),
    )
    op.create_table(
        "notifications",
        _id(),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column(
            "channel_id", sa.Integer(), sa.ForeignKey("notification_channels.id"), nullable=False
        ),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("created_at", nullable=False),
        _time("next_attempt_at"),
        _time("delivered_at"),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", "channel_id", "event", name="notifications_once"),
        _check("state", ("pending", "delivered", "failed"), "notifications_state"),
    )
    op.create_index("ix_notifications_alert_id", "notifications", ["alert_id"])
    op.create_index("notifications_due", "notifications", ["state", "next_attempt_at"])
    op.create_table(
        "recalls",
        _id(),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        _time("opened_at", nullable=False),
        sa.Column("opened_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("previous_status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        _check("state", ("open", "closed"), "recalls_state"),
    )
    op.create_index("ix_recalls_batch_id", "recalls", ["batch_id"])
    op.create_table(
        "recall_items",
        sa.Column("recall_id", sa.Integer(), sa.ForeignKey("recalls.id"), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=True),
        sa.Column("site_id", sa.String(64), nullable=True),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("shipment_id", sa.String(64), nullable=True),
        _time("since"),
        sa.PrimaryKeyConstraint("recall_id", "item_id"),
    )
    op.create_table(
        "site_approvals",
        sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), nullable=False),
        sa.Column("temperature_class", sa.String(16), nullable=False),
        _time("approved_at", nullable=False),
        sa.PrimaryKeyConstraint("site_id", "temperature_class"),
    )


def downgrade() -> None:
    op.drop_table("site_approvals")
    op.drop_table("recall_items")
    op.drop_index("ix_recalls_batch_id", table_name="recalls")
    op.drop_table("recalls")
    op.drop_index("notifications_due", table_name="notifications")
    op.drop_index("ix_notifications_alert_id", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("notification_channels")
    op.drop_index("ix_alert_comments_alert_id", table_name="alert_comments")
    op.drop_table("alert_comments")
    op.drop_index("alerts_state_opened", table_name="alerts")
    op.drop_table("alerts")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("expiry_warning_days")
