"""rules progress: how far each ingest worker's rules got, and readings by arrival time

Revision ID: 0011_rules_progress
Revises: 0010_merge
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_rules_progress"
down_revision = "0010_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rules_progress",
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("received_through", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id"),
    )
    op.create_index("readings_received", "readings", ["received_at"], postgresql_using="brin")


def downgrade() -> None:
    op.drop_index("readings_received", table_name="readings")
    op.drop_table("rules_progress")
