"""Master records as the API lists them: products, batches, items, sites, zones, customers
and orders, each listing a query in its stable order with the filters a caller may give."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import Site, Zone
from cloud.adapters.orm.traceability import (
    Batch,
    Customer,
    Item,
    Order,
    OrderLine,
    Product,
    Shipment,
)


def products() -> Select[tuple[Product]]:
    """Products by GTIN."""
    return select(Product).order_by(Product.gtin)


def batches(
    gtin: str | None = None, status: str | None = None, expires_before: date | None = None
) -> Select[tuple[Batch]]:
    """Batches, soonest expiry first."""
    query = select(Batch).order_by(Batch.expires_on, Batch.id)
    if gtin:
        query = query.where(Batch.gtin == gtin)
    if status:
        query = query.where(Batch.status == status)
    if expires_before:
        query = query.where(Batch.expires_on < expires_before)
    return query


def items(gtin: str | None = None, batch_id: int | None = None) -> Select[tuple[Item]]:
    """Items by id."""
    query = select(Item).order_by(Item.id)
    if gtin:
        query = query.where(Item.gtin == gtin)
    if batch_id is not None:
        query = query.where(Item.batch_id == batch_id)
    return query


def sites(kind: str | None = None) -> Select[tuple[Site]]:
    """Sites by id."""
    query = select(Site).order_by(Site.id)
    if kind:
        query = query.where(Site.kind == kind)
    return query


def zones(site_id: str | None = None) -> Select[tuple[Zone]]:
    """Zones by id."""
    query = select(Zone).order_by(Zone.id)
    if site_id:
        query = query.where(Zone.site_id == site_id)
    return query


def customers() -> Select[tuple[Customer]]:
    """Customers by id."""
    return select(Customer).order_by(Customer.id)


def orders(customer_id: str | None = None) -> Select[tuple[Order]]:
    """Orders, newest first."""
    query = select(Order).order_by(Order.placed_at.desc(), Order.id)
    if customer_id:
        query = query.where(Order.customer_id == customer_id)
    return query


def order_lines(session: Session, order_id: str) -> list[OrderLine]:
    """An order's lines in the order they were taken."""
    query = select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.id)
    return list(session.scalars(query))


def order_shipped(session: Session, order_id: str) -> bool:
    """True once any shipment was picked against the order."""
    query = select(Shipment.id).where(Shipment.order_id == order_id)
    return session.scalar(query) is not None
