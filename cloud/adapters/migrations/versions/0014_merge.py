"""merge: excursion identity, sequence ranges, dead-letter bounds, zone alerts from 0012

Revision ID: 0014_merge
Revises: 0013_excursion_identity, 0013_sequence_ranges, 0013_dead_letter_bounds,
  0013_zone_alerts
"""

revision = "0014_merge"
down_revision = (
    "0013_excursion_identity",
    "0013_sequence_ranges",
    "0013_dead_letter_bounds",
    "0013_zone_alerts",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
