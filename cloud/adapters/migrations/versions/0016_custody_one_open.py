"""custody: at most one open interval per item (a partial unique index); duplicates left by
concurrent rebuilds before every path took the custody lock are removed first

Revision ID: 0016_custody_one_open
Revises: 0015_calibration_evidence
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_custody_one_open"
down_revision = "0015_calibration_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Custody is derived: the copies a race left are the same interval twice; keep the first.
    op.execute(
        """
        DELETE FROM custody_intervals
        WHERE ended_at IS NULL
          AND id NOT IN (
            SELECT min(id) FROM custody_intervals WHERE ended_at IS NULL GROUP BY item_id
          )
        """
    )
    op.create_index(
        "custody_one_open_per_item",
        "custody_intervals",
        ["item_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
        sqlite_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("custody_one_open_per_item", table_name="custody_intervals")
