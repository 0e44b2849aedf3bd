"""rfid observations, read points and gateway events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:13:50.801190
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "read_points",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("zone_id", sa.String(length=64), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("reader", sa.String(length=64), nullable=False),
        sa.Column("business_step", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["gateway_id"], ["gateways.id"]),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("read_points", schema=None) as batch_op:
        batch_op.create_index("ix_read_points_zone_id", ["zone_id"], unique=False)
        batch_op.create_index("ix_read_points_gateway_id", ["gateway_id"], unique=False)
    op.create_table(
        "gateway_events",
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("zone_id", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("limit", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("gateway_id", "seq"),
    )
    op.create_table(
        "observations",
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("epc", sa.String(length=128), nullable=False),
        sa.Column("id_uri", sa.String(length=200), nullable=True),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("serial", sa.String(length=40), nullable=True),
        sa.Column("sscc", sa.String(length=18), nullable=True),
        sa.Column("read_point", sa.String(length=64), nullable=False),
        sa.Column("antenna", sa.Integer(), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("peak_rssi", sa.Float(), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("gateway_id", "seq"),
    )
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.create_index("observations_epc_time", ["epc", "first_seen"], unique=False)
        batch_op.create_index("observations_point_time", ["read_point", "first_seen"], unique=False)


def downgrade() -> None:
    op.drop_table("read_points")
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.drop_index("observations_point_time")
        batch_op.drop_index("observations_epc_time")

    op.drop_table("observations")
    op.drop_table("gateway_events")
