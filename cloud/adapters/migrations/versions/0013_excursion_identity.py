"""excursions: identity (zone, profile, rule, level, started_at), so the profiles of a zone
and the levels of a monitoring gap each keep an excursion of their own (decision 0020)

Revision ID: 0013_excursion_identity
Revises: 0012_rule_state_version
"""

from alembic import op

revision = "0013_excursion_identity"
down_revision = "0012_rule_state_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("excursions") as batch:
        batch.drop_constraint("excursions_identity", type_="unique")
        batch.create_unique_constraint(
            "excursions_identity", ["zone_id", "profile_id", "rule", "level", "started_at"]
        )


def downgrade() -> None:
    # The database refuses this while excursions of two profiles (or two levels of a gap)
    # share a zone, rule and start: the old identity cannot hold both, and none is dropped.
    with op.batch_alter_table("excursions") as batch:
        batch.drop_constraint("excursions_identity", type_="unique")
        batch.create_unique_constraint("excursions_identity", ["zone_id", "rule", "started_at"])
