"""merge: rollups, quality rules, alerting and EPCIS receipts branched from api tokens

Revision ID: 0010_merge
Revises: 0006_readings_rollups, 0007_quality, 0008_alerting, 0009_traceability_more
"""

revision = "0010_merge"
down_revision = (
    "0006_readings_rollups",
    "0007_quality",
    "0008_alerting",
    "0009_traceability_more",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
