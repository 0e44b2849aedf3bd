"""merge: excursion identity, sequence ranges and dead-letter bounds branched from 0012

Revision ID: 0014_merge
Revises: 0013_excursion_identity, 0013_sequence_ranges, 0013_dead_letter_bounds
"""

revision = "0014_merge"
down_revision = (
    "0013_excursion_identity",
    "0013_sequence_ranges",
    "0013_dead_letter_bounds",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
