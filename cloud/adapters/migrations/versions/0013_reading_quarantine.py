"""implausible readings: readings whose times cannot be believed, kept apart with the reason

Revision ID: 0013_reading_quarantine
Revises: 0012_rule_state_version
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_reading_quarantine"
down_revision = "0012_rule_state_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "implausible_readings",
        sa.Column("gateway_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("sensor_id", sa.String(64), nullable=False),
        sa.Column("quantity", sa.String(32), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("quality", sa.String(20), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    # gateways.clock_synchronised comes with 0013_sequence_ranges (the heartbeat's fields)


def downgrade() -> None:
    op.drop_table("implausible_readings")
