"""merge: custody's one open interval and master data proposals, both from 0015

Revision ID: 0017_merge
Revises: 0016_custody_one_open, 0016_master_data_proposals
"""

revision = "0017_merge"
down_revision = ("0016_custody_one_open", "0016_master_data_proposals")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
