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
from cloud.views.pages import where_given


def products() -> Select[Product]:
    """Products by GTIN."""
    return select(Product).order_by(Product.gtin)


def batches(
    gtin: str | None = None, status: str | None = None, expires_before: date | None = None
) -> Select[Batch]:
    """Batches, soonest expiry first."""
    query = select(Batch).order_by(Batch.expires_on, Batch.id)
    query = where_given(query, Batch, gtin=gtin, status=status)
    if expires_before:
        query = query.where(Batch.expires_on < expires_before)
    return query


def items(gtin: str | None = None, batch_id: int | None = None) -> Select[Item]:
    """Items by id."""
    return where_given(select(Item).order_by(Item.id), Item, gtin=gtin, batch_id=batch_id)


def sites(kind: str | None = None) -> Select[Site]:
    """Sites by id."""
    return where_given(select(Site).order_by(Site.id), Site, kind=kind)


def zones(site_id: str | None = None) -> Select[Zone]:
    """Zones by id."""
    return where_given(select(Zone).order_by(Zone.id), Zone, site_id=site_id)


def customers() -> Select[Customer]:
    """Customers by id."""
    return select(Customer).order_by(Customer.id)


def orders(customer_id: str | None = None) -> Select[Order]:
    """Orders, newest first."""
    query = select(Order).order_by(Order.placed_at.desc(), Order.id)
    return where_given(query, Order, customer_id=customer_id)


def order_lines(session: Session, order_id: str) -> list[OrderLine]:
    """An order's lines in the order they were taken."""
    query = select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.id)
    return list(session.scalars(query))


def order_shipped(session: Session, order_id: str) -> bool:
    """True once any shipment was picked against the order."""
    query = select(Shipment.id).where(Shipment.order_id == order_id)
    return session.scalar(query) is not None
