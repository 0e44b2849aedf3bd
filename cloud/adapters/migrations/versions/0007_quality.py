"""quality: monitoring profiles, suppression windows, detector states, excursions,
exposures and holds

Revision ID: 0007_quality
Revises: 0005_api_tokens
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_quality"
down_revision = "0005_api_tokens"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def _check(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=name)


LEVELS = ("warning", "alarm")
KINDS = ("high", "low", "freezing", "humidity", "cumulative", "unknown_conditions")


def upgrade() -> None:
    op.create_table(
        "monitoring_profiles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.String(length=32), nullable=False),
        sa.Column("max_gap_min", sa.Float(), nullable=False),
        sa.Column("gap_alarm_min", sa.Float(), nullable=False),
        sa.Column("freeze_limit", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "monitoring_levels",
        _id(),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("limit", sa.Float(), nullable=False),
        sa.Column("delay_min", sa.Float(), nullable=False),
        sa.Column("deadband", sa.Float(), nullable=False),
        _check("level", LEVELS, "monitoring_levels_level"),
        _check("kind", ("high", "low"), "monitoring_levels_kind"),
        sa.ForeignKeyConstraint(["profile_id"], ["monitoring_profiles.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_monitoring_levels_profile_id", "monitoring_levels", ["profile_id"])
    op.create_table(
        "cumulative_rules",
        _id(),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("limit", sa.Float(), nullable=False),
        sa.Column("allowed_min", sa.Float(), nullable=False),
        sa.Column("window_min", sa.Float(), nullable=False),
        _check("level", LEVELS, "cumulative_rules_level"),
        _check("direction", ("above", "below"), "cumulative_rules_direction"),
        sa.ForeignKeyConstraint(["profile_id"], ["monitoring_profiles.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cumulative_rules_profile_id", "cumulative_rules", ["profile_id"])
    op.create_table(
        "zone_profiles",
        sa.Column("zone_id", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"]),
        sa.ForeignKeyConstraint(["profile_id"], ["monitoring_profiles.id"]),
        sa.PrimaryKeyConstraint("zone_id", "profile_id"),
    )
    op.create_table(
        "suppression_windows",
        _id(),
        sa.Column("zone_id", sa.String(length=64), nullable=False),
        _time("started_at"),
        _time("ended_at"),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("grace_min", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("suppression_zone_time", "suppression_windows", ["zone_id", "started_at"])
    op.create_table(
        "zone_rule_states",
        sa.Column("zone_id", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        _time("watermark", nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("zone_id", "profile_id"),
    )
    op.create_table(
        "excursions",
        _id(),
        sa.Column("zone_id", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        _time("started_at"),
        _time("ended_at", nullable=True),
        sa.Column("peak", sa.Float(), nullable=True),
        sa.Column("limit", sa.Float(), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("suppressed_reason", sa.String(length=200), nullable=True),
        _time("detected_at"),
        _check("kind", KINDS, "excursions_kind"),
        _check("level", LEVELS, "excursions_level"),
        _check("state", ("open", "closed"), "excursions_state"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("zone_id", "rule", "started_at", name="excursions_identity"),
    )
    op.create_index("excursions_zone_time", "excursions", ["zone_id", "started_at"])
    op.create_table(
        "exposures",
        _id(),
        sa.Column("excursion_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Float(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("degree_minutes", sa.Float(), nullable=False),
        _time("started_at"),
        _time("ended_at"),
        sa.ForeignKeyConstraint(["excursion_id"], ["excursions.id"]),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("excursion_id", "batch_id", name="exposures_identity"),
    )
    op.create_index("ix_exposures_batch_id", "exposures", ["batch_id"])
    op.create_table(
        "holds",
        _id(),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("excursion_id", sa.Integer(), nullable=True),
        _time("opened_at"),
        sa.Column("status", sa.String(length=16), nullable=False),
        _time("decided_at", nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("signature_id", sa.Integer(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        _check("status", ("open", "investigating", "released", "rejected"), "holds_status"),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"]),
        sa.ForeignKeyConstraint(["excursion_id"], ["excursions.id"]),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["signature_id"], ["signatures.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_holds_batch_id", "holds", ["batch_id"])


def downgrade() -> None:
    for index, table in (
        ("ix_holds_batch_id", "holds"),
        ("ix_exposures_batch_id", "exposures"),
        ("excursions_zone_time", "excursions"),
        ("suppression_zone_time", "suppression_windows"),
        ("ix_cumulative_rules_profile_id", "cumulative_rules"),
        ("ix_monitoring_levels_profile_id", "monitoring_levels"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "holds",
        "exposures",
        "excursions",
        "zone_rule_states",
        "suppression_windows",
        "zone_profiles",
        "cumulative_rules",
        "monitoring_levels",
        "monitoring_profiles",
    ):
        op.drop_table(table)
