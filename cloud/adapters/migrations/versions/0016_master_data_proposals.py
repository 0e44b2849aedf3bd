"""master data proposals: what a gateway's status said that differs from master data (site
name, kind, time zone; zone name, kind, limits; new zones), kept for an admin to accept or
reject instead of being applied from the wire

Revision ID: 0016_master_data_proposals
Revises: 0015_calibration_evidence
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_master_data_proposals"
down_revision = "0015_calibration_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "master_data_proposals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("gateway_id", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("current", sa.JSON(), nullable=True),
        sa.Column("proposed", sa.JSON(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'accepted', 'rejected', 'withdrawn')", name="proposal_state"
        ),
    )
    op.create_index("ix_master_data_proposals_gateway_id", "master_data_proposals", ["gateway_id"])
    op.create_index(
        "proposal_one_pending",
        "master_data_proposals",
        ["subject_kind", "subject_id", "field"],
        unique=True,
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("master_data_proposals")
