"""zone rule states: a version, bumped by every change (workers keep the states they wrote)

Revision ID: 0012_rule_state_version
Revises: 0011_rules_progress
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_rule_state_version"
down_revision = "0011_rules_progress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zone_rule_states") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("zone_rule_states") as batch:
        batch.drop_column("version")
