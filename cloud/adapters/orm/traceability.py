"""The traceability model: products, batches, items, logistic units, orders, transfers,
shipments and the custody intervals derived from RFID reads and scans.

Statuses and states are strings checked by the database; their meaning and transitions live
in cloud.domain (lifecycle, custody).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.adapters.orm.audit import audited
from cloud.adapters.orm.base import Base, one_of
from cloud.domain.clock import utcnow
from cloud.domain.holds import RISK_CLASSES

BATCH_STATUSES = ("available", "held", "rejected", "expired", "recalled")
TRANSFER_STATES = ("planned", "loaded", "in_transit", "received")
SHIPMENT_STATES = ("picked", "loaded", "shipped", "delivered")
CUSTODY_BASES = ("observed", "inferred", "via_parent")
BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class Product(Base):
    """A GTIN with its storage profile and shelf life."""

    __tablename__ = "products"

    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    low: Mapped[float | None] = mapped_column(Float)  # storage range, C
    high: Mapped[float | None] = mapped_column(Float)
    freeze_sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    humidity_max: Mapped[float | None] = mapped_column(Float)  # % RH
    stability_budget_min: Mapped[int | None] = mapped_column(Integer)  # time out of range allowed
    shelf_life_days: Mapped[int | None] = mapped_column(Integer)
    expiry_warning_days: Mapped[str | None] = mapped_column(String(32))  # "60,30,7" if unset
    # high: every hold on its batches is released by two QA signatures (review, approval)
    risk_class: Mapped[str] = mapped_column(
        String(16), default="standard", server_default="standard"
    )

    __table_args__ = (one_of("risk_class", RISK_CLASSES, "products_risk_class"),)


class Batch(Base):
    """A lot of one product."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gtin: Mapped[str] = mapped_column(ForeignKey("products.gtin"))
    lot: Mapped[str] = mapped_column(String(20))
    manufactured_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="available")

    __table_args__ = (
        UniqueConstraint("gtin", "lot", name="batches_gtin_lot"),
        one_of("status", BATCH_STATUSES, "batches_status"),
        Index("batches_expiry", "expires_on"),
    )


class Item(Base):
    """One serialised unit (SGTIN: GTIN + serial), with its tag's EPC when tagged."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gtin: Mapped[str] = mapped_column(ForeignKey("products.gtin"))
    serial: Mapped[str] = mapped_column(String(20))
    epc: Mapped[str | None] = mapped_column(String(128), unique=True)  # upper-case hex
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)

    __table_args__ = (UniqueConstraint("gtin", "serial", name="items_sgtin"),)


class LogisticUnit(Base):
    """A pallet or case identified by its SSCC."""

    __tablename__ = "logistic_units"

    sscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    epc: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Aggregation(Base):
    """An item or a unit packed in a unit, from packed_at until unpacked_at."""

    __tablename__ = "aggregations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    parent_sscc: Mapped[str] = mapped_column(ForeignKey("logistic_units.sscc"), index=True)
    child_item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    child_sscc: Mapped[str | None] = mapped_column(ForeignKey("logistic_units.sscc"), index=True)
    packed_at: Mapped[datetime]
    unpacked_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(
            "(child_item_id IS NULL) <> (child_sscc IS NULL)", name="aggregations_one_child"
        ),
    )


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    gln: Mapped[str | None] = mapped_column(String(13))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"))  # where deliveries go


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    placed_at: Mapped[datetime]
    deliver_by: Mapped[date | None] = mapped_column(Date)


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    gtin: Mapped[str] = mapped_column(ForeignKey("products.gtin"))
    quantity: Mapped[int] = mapped_column(Integer)
    min_shelf_life_days: Mapped[int] = mapped_column(Integer, default=0)  # left at delivery


class Transfer(Base):
    """Items moving between two warehouses on a truck."""

    __tablename__ = "transfers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    origin_site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    destination_site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    truck_zone_id: Mapped[str | None] = mapped_column(ForeignKey("zones.id"))
    receiving_zone_id: Mapped[str | None] = mapped_column(ForeignKey("zones.id"))
    state: Mapped[str] = mapped_column(String(16), default="planned")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (one_of("state", TRANSFER_STATES, "transfers_state"),)


class TransferItem(Base):
    """An item on a transfer: when it was loaded and received, and any discrepancy."""

    __tablename__ = "transfer_items"

    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True, index=True)
    loaded_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    discrepancy: Mapped[str | None] = mapped_column(String(16))  # missing | unexpected


class TransferStateChange(Base):
    __tablename__ = "transfer_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(200))


class Shipment(Base):
    """Items to a customer against an order."""

    __tablename__ = "shipments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    truck_zone_id: Mapped[str | None] = mapped_column(ForeignKey("zones.id"))
    delivery_zone_id: Mapped[str | None] = mapped_column(ForeignKey("zones.id"))
    state: Mapped[str] = mapped_column(String(16), default="picked")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (one_of("state", SHIPMENT_STATES, "shipments_state"),)


class ShipmentItem(Base):
    __tablename__ = "shipment_items"

    shipment_id: Mapped[str] = mapped_column(ForeignKey("shipments.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True, index=True)
    loaded_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]


class ShipmentStateChange(Base):
    __tablename__ = "shipment_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shipment_id: Mapped[str] = mapped_column(ForeignKey("shipments.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(200))


class ShippingRelease(Base):
    """QA's release of a transfer's or a shipment's batches for shipment: the manifest of
    their temperature evidence as QA saw it, which QA's signature (shipment_release) covers."""

    __tablename__ = "shipping_releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str | None] = mapped_column(ForeignKey("transfers.id"), index=True)
    shipment_id: Mapped[str | None] = mapped_column(ForeignKey("shipments.id"), index=True)
    released_at: Mapped[datetime]
    released_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        CheckConstraint(
            "(transfer_id IS NULL) <> (shipment_id IS NULL)", name="shipping_releases_one_movement"
        ),
    )


class Scan(Base):
    """A barcode scanned by a person at a read point (a handheld's place), parsed to GS1 keys."""

    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    read_point_id: Mapped[str] = mapped_column(ForeignKey("read_points.id"))
    scanned_at: Mapped[datetime]
    data: Mapped[str] = mapped_column(Text)
    gtin: Mapped[str | None] = mapped_column(String(14))
    serial: Mapped[str | None] = mapped_column(String(20))
    lot: Mapped[str | None] = mapped_column(String(20))
    sscc: Mapped[str | None] = mapped_column(String(18), index=True)
    actor: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("scans_sgtin", "gtin", "serial"),)


class CustodyInterval(Base):
    """An item in a zone from started_at until ended_at (NULL: still there), and on what basis."""

    __tablename__ = "custody_intervals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    basis: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        one_of("basis", CUSTODY_BASES, "custody_basis"),
        Index("custody_item_time", "item_id", "started_at"),
        Index("custody_zone_time", "zone_id", "started_at"),
        # "What is in zone Z now" reads only the open intervals.
        Index(
            "custody_open_by_zone",
            "zone_id",
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
        # An item is in one place at a time: two open intervals of it cannot be stored.
        Index(
            "custody_one_open_per_item",
            "item_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
    )


class EpcisReceipt(Base):
    """A trading partner's EPCIS event taken into custody, by eventID (or its content hash),
    so that the same event sent again is not counted twice."""

    __tablename__ = "epcis_receipts"

    event_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_time: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(100))
    sightings: Mapped[int] = mapped_column(Integer)


# Regulated records: every create, update and delete lands in the audit trail with the actor
# and, for updates and deletes, the reason (cloud.adapters.orm.audit). Lines, state histories,
# scans and custody are records of their own that are only appended or derived.
for _regulated in (Product, Batch, Item, Transfer, Shipment, ShippingRelease):
    audited(_regulated)
