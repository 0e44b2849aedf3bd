"""traceability: EPCIS receipts (partner events taken into custody, by eventID)

Revision ID: 0009_traceability_more
Revises: 0005_api_tokens
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_traceability_more"
down_revision = "0005_api_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "epcis_receipts",
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("sightings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_key"),
    )


def downgrade() -> None:
    op.drop_table("epcis_receipts")
