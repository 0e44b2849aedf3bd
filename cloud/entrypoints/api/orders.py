"""Customers' orders with their lines (product, quantity, shelf life left at delivery)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, jsonify
from pydantic import AwareDatetime, Field
from sqlalchemy import delete
from sqlalchemy.orm import Session

from cloud.adapters.orm.traceability import Customer, Order, OrderLine, Product
from cloud.domain.clock import utcnow
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.pagination import Page, page_of
from cloud.entrypoints.api.problems import Problem, parse_body, parse_query
from cloud.entrypoints.api.records import Records, unknown_reference
from cloud.service_layer.master_data import Gtin
from cloud.views import records

bp = Blueprint("orders", __name__, url_prefix="/api/orders")


class Line(Body):
    gtin: Gtin
    quantity: int = Field(ge=1)
    min_shelf_life_days: int = Field(0, ge=0)


class NewOrder(Body):
    id: str = Field(min_length=1, max_length=64)
    customer_id: str
    placed_at: AwareDatetime | None = None
    deliver_by: date | None = None
    lines: list[Line] = Field(min_length=1)


class OrderChange(Body):
    """Lines, when given, replace the order's lines (only before anything is shipped)."""

    deliver_by: date | None = None
    lines: list[Line] | None = Field(None, min_length=1)


class OrderFilter(Page):
    customer_id: str | None = None


def order_json(db: Session, o: Order) -> dict[str, Any]:
    lines = records.order_lines(db, o.id)
    return {
        "id": o.id,
        "customer_id": o.customer_id,
        "placed_at": o.placed_at.isoformat(),
        "deliver_by": None if o.deliver_by is None else o.deliver_by.isoformat(),
        "lines": [
            {
                "id": line.id,
                "gtin": line.gtin,
                "quantity": line.quantity,
                "min_shelf_life_days": line.min_shelf_life_days,
            }
            for line in lines
        ],
    }


ORDERS = Records(Order, "order", lambda o: order_json(get_db(), o), {})


def _add_lines(db: Session, order_id: str, lines: list[Line]) -> None:
    for position, line in enumerate(lines):
        if db.get(Product, line.gtin) is None:
            raise unknown_reference(f"lines[{position}].gtin: product {line.gtin} does not exist")
        db.add(OrderLine(order_id=order_id, **line.model_dump(exclude={"reason"})))


@bp.get("")
@endpoint("read", query=OrderFilter)
def list_orders() -> Any:
    """Orders, newest first; filter by customer_id."""
    given = parse_query(OrderFilter)
    db = get_db()
    return page_of(records.orders(given.customer_id), given, lambda o: order_json(db, o))


@bp.post("")
@endpoint("movements", body=NewOrder, status=201)
def create_order() -> Any:
    """Take a customer's order with its lines."""
    given = parse_body(NewOrder)
    db = get_db()
    if db.get(Order, given.id) is not None:
        raise Problem(409, "conflict", "Conflict", f"order {given.id} exists already")
    if db.get(Customer, given.customer_id) is None:
        raise unknown_reference(f"customer_id: customer {given.customer_id} does not exist")
    order = Order(
        id=given.id,
        customer_id=given.customer_id,
        placed_at=given.placed_at or utcnow(),
        deliver_by=given.deliver_by,
    )
    db.add(order)
    db.flush()
    _add_lines(db, order.id, given.lines)
    db.commit()
    return jsonify(order_json(db, order)), 201


@bp.get("/<order_id>")
@endpoint("read")
def get_order(order_id: str) -> Any:
    """One order with its lines."""
    return ORDERS.show(order_id)


@bp.patch("/<order_id>")
@endpoint("movements", body=OrderChange)
def change_order(order_id: str) -> Any:
    """Change the delivery date, or replace the lines while nothing is shipped."""
    given = parse_body(OrderChange)
    db = get_db()
    order = ORDERS.find(db, order_id)
    if "deliver_by" in given.model_fields_set:
        order.deliver_by = given.deliver_by
    if given.lines is not None:
        if records.order_shipped(db, order_id):
            raise Problem(
                409, "conflict", "Conflict", f"order {order_id} has shipments: lines are fixed"
            )
        db.execute(delete(OrderLine).where(OrderLine.order_id == order_id))
        _add_lines(db, order_id, given.lines)
    db.commit()
    return jsonify(order_json(db, order))
