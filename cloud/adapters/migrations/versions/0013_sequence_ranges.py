"""sequence continuity: ranges of seqs received per gateway, gaps alerted, heartbeat fields

Revision ID: 0013_sequence_ranges
Revises: 0012_rule_state_version
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_sequence_ranges"
down_revision = "0012_rule_state_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateways") as batch:
        batch.add_column(sa.Column("last_heartbeat", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("disk_free_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("clock_synchronised", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("next_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("seq_restart_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("seq_restart_from", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("seq_restart_below", sa.BigInteger(), nullable=True))
    op.create_table(
        "sequence_ranges",
        sa.Column("gateway_id", sa.String(64), primary_key=True),
        sa.Column("first", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sequence_gaps",
        sa.Column("gateway_id", sa.String(64), primary_key=True),
        sa.Column("first", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alerts.id"), nullable=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("sequence_gaps")
    op.drop_table("sequence_ranges")
    with op.batch_alter_table("gateways") as batch:
        for column in (
            "seq_restart_below",
            "seq_restart_from",
            "seq_restart_at",
            "next_seq",
            "clock_synchronised",
            "disk_free_bytes",
            "last_heartbeat",
        ):
            batch.drop_column(column)
