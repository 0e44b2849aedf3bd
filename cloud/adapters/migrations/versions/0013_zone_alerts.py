"""alerts may name a zone (the rules' reconciliation reports a zone whose record differs)

Revision ID: 0013_zone_alerts
Revises: 0012_rule_state_version
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_zone_alerts"
down_revision = "0012_rule_state_version"
branch_labels = None
depends_on = None

BEFORE = ("excursion", "hold", "expiry", "recall", "gateway")
AFTER = (*BEFORE, "zone")


def _kinds(kinds: tuple[str, ...]) -> str:
    return f"subject_kind IN ({', '.join(repr(k) for k in kinds)})"


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("alerts_subject_kind", type_="check")
        batch.create_check_constraint("alerts_subject_kind", sa.text(_kinds(AFTER)))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("alerts_subject_kind", type_="check")
        batch.create_check_constraint("alerts_subject_kind", sa.text(_kinds(BEFORE)))
