"""Join the audit trail and traceability branches

Revision ID: 0004_merge
Revises: 0003_audit, 0003_traceability
"""

revision = "0004_merge"
down_revision = ("0003_audit", "0003_traceability")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
