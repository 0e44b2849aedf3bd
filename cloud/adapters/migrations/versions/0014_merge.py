"""merge: the parallel revisions of 0012 (identity, sequences, dead letters, alerts,
implausible readings, the rules mark)

Revision ID: 0014_merge
Revises: 0013_excursion_identity, 0013_sequence_ranges, 0013_dead_letter_bounds,
  0013_zone_alerts, 0013_reading_quarantine, 0013_rules_mark
"""

revision = "0014_merge"
down_revision = (
    "0013_excursion_identity",
    "0013_sequence_ranges",
    "0013_dead_letter_bounds",
    "0013_zone_alerts",
    "0013_reading_quarantine",
    "0013_rules_mark",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
