"""dead letters: the gateway, the original size, how many refusals a row counts, replays

Revision ID: 0013_dead_letter_bounds
Revises: 0012_rule_state_version
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_dead_letter_bounds"
down_revision = "0012_rule_state_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("gateway_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("size", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("count", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("replay_outcome", sa.Text(), nullable=True))
        batch.create_index("dead_letters_gateway", ["gateway_id", "received_at"])
    op.execute("UPDATE dead_letters SET size = length(payload)")


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_index("dead_letters_gateway")
        for column in ("replay_outcome", "replayed_at", "count", "size", "gateway_id"):
            batch.drop_column(column)
