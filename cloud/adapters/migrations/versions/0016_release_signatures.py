"""two-person release of high-risk holds (products.risk_class, holds.reviewed_by/_at) and QA's
signed release for shipment (shipping_releases, the meaning shipment_release)

Revision ID: 0016_release_signatures
Revises: 0015_calibration_evidence
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_release_signatures"
down_revision = "0015_calibration_evidence"
branch_labels = None
depends_on = None

OLD_MEANINGS = "meaning IN ('review', 'approval', 'release', 'rejection')"
NEW_MEANINGS = "meaning IN ('review', 'approval', 'release', 'rejection', 'shipment_release')"


def upgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.add_column(
            sa.Column("risk_class", sa.String(16), nullable=False, server_default="standard")
        )
        batch.create_check_constraint("products_risk_class", "risk_class IN ('standard', 'high')")
    with op.batch_alter_table("holds") as batch:
        batch.add_column(sa.Column("reviewed_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key("holds_reviewed_by_fkey", "users", ["reviewed_by"], ["id"])
    with op.batch_alter_table("signatures") as batch:
        batch.drop_constraint("signatures_meaning", type_="check")
        batch.create_check_constraint("signatures_meaning", NEW_MEANINGS)
    op.create_table(
        "shipping_releases",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("transfer_id", sa.String(64), sa.ForeignKey("transfers.id"), nullable=True),
        sa.Column("shipment_id", sa.String(64), sa.ForeignKey("shipments.id"), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "(transfer_id IS NULL) <> (shipment_id IS NULL)", name="shipping_releases_one_movement"
        ),
    )
    op.create_index("ix_shipping_releases_transfer_id", "shipping_releases", ["transfer_id"])
    op.create_index("ix_shipping_releases_shipment_id", "shipping_releases", ["shipment_id"])


def downgrade() -> None:
    op.drop_table("shipping_releases")
    with op.batch_alter_table("signatures") as batch:
        batch.drop_constraint("signatures_meaning", type_="check")
        batch.create_check_constraint("signatures_meaning", OLD_MEANINGS)
    with op.batch_alter_table("holds") as batch:
        batch.drop_constraint("holds_reviewed_by_fkey", type_="foreignkey")
        batch.drop_column("reviewed_at")
        batch.drop_column("reviewed_by")
    with op.batch_alter_table("products") as batch:
        batch.drop_constraint("products_risk_class", type_="check")
        batch.drop_column("risk_class")
