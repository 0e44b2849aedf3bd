"""quarantined readings: stored readings the rules could not evaluate, with the reason

Revision ID: 0013_rules_mark
Revises: 0012_rule_state_version
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_rules_mark"
down_revision = "0012_rule_state_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantined_readings",
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sensor_id", sa.String(length=64), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("gateway_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("quarantined_readings")
