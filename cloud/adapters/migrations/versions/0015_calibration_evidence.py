"""excursions, exposures and holds say when their evidence comes from sensors past their
calibration due date ("1 of 2 sensors calibration overdue since ...")

Revision ID: 0015_calibration_evidence
Revises: 0014_merge
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_calibration_evidence"
down_revision = "0014_merge"
branch_labels = None
depends_on = None

TABLES = ("excursions", "exposures", "holds")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("evidence_note", sa.String(200), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("evidence_note")
