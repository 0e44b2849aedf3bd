"""traceability: products, batches, items, logistic units, orders, transfers, shipments,
scans and custody intervals

Revision ID: 0003_traceability
Revises: 0002
Create Date: 2026-11-24 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_traceability"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id(name: str, length: int = 64, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _states(table: str, owner: str) -> None:
    op.create_table(
        f"{table}_states",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _id(f"{table}_id"),
        sa.Column("state", sa.String(length=16), nullable=False),
        _time("at"),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint([f"{table}_id"], [f"{owner}.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(f"ix_{table}_states_{table}_id", f"{table}_states", [f"{table}_id"])


def upgrade() -> None:
    op.create_table(
        "products",
        _id("gtin", 14),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("freeze_sensitive", sa.Boolean(), nullable=False),
        sa.Column("humidity_max", sa.Float(), nullable=True),
        sa.Column("stability_budget_min", sa.Integer(), nullable=True),
        sa.Column("shelf_life_days", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("gtin"),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _id("gtin", 14),
        sa.Column("lot", sa.String(length=20), nullable=False),
        sa.Column("manufactured_on", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "status IN ('available', 'held', 'rejected', 'expired', 'recalled')",
            name="batches_status",
        ),
        sa.ForeignKeyConstraint(["gtin"], ["products.gtin"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gtin", "lot", name="batches_gtin_lot"),
    )
    op.create_index("batches_expiry", "batches", ["expires_on"])
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _id("gtin", 14),
        sa.Column("serial", sa.String(length=20), nullable=False),
        _id("epc", 128, nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"]),
        sa.ForeignKeyConstraint(["gtin"], ["products.gtin"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("epc"),
        sa.UniqueConstraint("gtin", "serial", name="items_sgtin"),
    )
    op.create_index("ix_items_batch_id", "items", ["batch_id"])
    op.create_table(
        "logistic_units",
        _id("sscc", 18),
        _id("epc", 128, nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("sscc"),
        sa.UniqueConstraint("epc"),
    )
    op.create_table(
        "aggregations",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        _id("parent_sscc", 18),
        sa.Column("child_item_id", sa.Integer(), nullable=True),
        _id("child_sscc", 18, nullable=True),
        _time("packed_at"),
        _time("unpacked_at", nullable=True),
        sa.CheckConstraint(
            "(child_item_id IS NULL) <> (child_sscc IS NULL)", name="aggregations_one_child"
        ),
        sa.ForeignKeyConstraint(["child_item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["child_sscc"], ["logistic_units.sscc"]),
        sa.ForeignKeyConstraint(["parent_sscc"], ["logistic_units.sscc"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("child_item_id", "child_sscc", "parent_sscc"):
        op.create_index(f"ix_aggregations_{column}", "aggregations", [column])

    op.create_table(
        "customers",
        _id("id"),
        sa.Column("name", sa.String(length=200), nullable=False),
        _id("gln", 13, nullable=True),
        _id("site_id", nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "orders",
        _id("id"),
        _id("customer_id"),
        _time("placed_at"),
        sa.Column("deliver_by", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"])
    op.create_table(
        "order_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _id("order_id"),
        _id("gtin", 14),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("min_shelf_life_days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["gtin"], ["products.gtin"]),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_order_lines_order_id", "order_lines", ["order_id"])

    op.create_table(
        "transfers",
        _id("id"),
        _id("origin_site_id"),
        _id("destination_site_id"),
        _id("truck_zone_id", nullable=True),
        _id("receiving_zone_id", nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        _time("created_at"),
        sa.CheckConstraint(
            "state IN ('planned', 'loaded', 'in_transit', 'received')", name="transfers_state"
        ),
        sa.ForeignKeyConstraint(["destination_site_id"], ["sites.id"]),
        sa.ForeignKeyConstraint(["origin_site_id"], ["sites.id"]),
        sa.ForeignKeyConstraint(["receiving_zone_id"], ["zones.id"]),
        sa.ForeignKeyConstraint(["truck_zone_id"], ["zones.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "transfer_items",
        _id("transfer_id"),
        sa.Column("item_id", sa.Integer(), nullable=False),
        _time("loaded_at", nullable=True),
        _time("received_at", nullable=True),
        sa.Column("discrepancy", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["transfer_id"], ["transfers.id"]),
        sa.PrimaryKeyConstraint("transfer_id", "item_id"),
    )
    op.create_index("ix_transfer_items_item_id", "transfer_items", ["item_id"])
    _states("transfer", "transfers")

    op.create_table(
        "shipments",
        _id("id"),
        _id("order_id"),
        _id("truck_zone_id", nullable=True),
        _id("delivery_zone_id", nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        _time("created_at"),
        sa.CheckConstraint(
            "state IN ('picked', 'loaded', 'shipped', 'delivered')", name="shipments_state"
        ),
        sa.ForeignKeyConstraint(["delivery_zone_id"], ["zones.id"]),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.ForeignKeyConstraint(["truck_zone_id"], ["zones.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_shipments_order_id", "shipments", ["order_id"])
    op.create_table(
        "shipment_items",
        _id("shipment_id"),
        sa.Column("item_id", sa.Integer(), nullable=False),
        _time("loaded_at", nullable=True),
        _time("delivered_at", nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"]),
        sa.PrimaryKeyConstraint("shipment_id", "item_id"),
    )
    op.create_index("ix_shipment_items_item_id", "shipment_items", ["item_id"])
    _states("shipment", "shipments")

    op.create_table(
        "scans",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        _id("read_point_id"),
        _time("scanned_at"),
        sa.Column("data", sa.Text(), nullable=False),
        _id("gtin", 14, nullable=True),
        _id("serial", 20, nullable=True),
        _id("lot", 20, nullable=True),
        _id("sscc", 18, nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=True),
        _time("received_at"),
        sa.ForeignKeyConstraint(["read_point_id"], ["read_points.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_scans_sscc", "scans", ["sscc"])
    op.create_index("scans_sgtin", "scans", ["gtin", "serial"])

    op.create_table(
        "custody_intervals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        _id("zone_id"),
        _time("started_at"),
        _time("ended_at", nullable=True),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.CheckConstraint("basis IN ('observed', 'inferred', 'via_parent')", name="custody_basis"),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("custody_item_time", "custody_intervals", ["item_id", "started_at"])
    op.create_index("custody_zone_time", "custody_intervals", ["zone_id", "started_at"])
    # "What is in zone Z now" reads only the open intervals.
    op.create_index(
        "custody_open_by_zone",
        "custody_intervals",
        ["zone_id"],
        postgresql_where=sa.text("ended_at IS NULL"),
        sqlite_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    for table in (
        "custody_intervals",
        "scans",
        "shipment_states",
        "shipment_items",
        "shipments",
        "transfer_states",
        "transfer_items",
        "transfers",
        "order_lines",
        "orders",
        "customers",
        "aggregations",
        "logistic_units",
        "items",
        "batches",
        "products",
    ):
        op.drop_table(table)  # its indexes go with it
