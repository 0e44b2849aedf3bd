"""Shipments to customers: pick against an order, then load, ship and deliver."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.traceability import SHIPMENT_STATES, Shipment, ShipmentStateChange
from cloud.entrypoints.api.contract import endpoint
from cloud.entrypoints.api.movements import (
    ItemsStep,
    Movement,
    Step,
    history_json,
    lines_json,
    refusals,
    resolve_items,
    when,
)
from cloud.entrypoints.api.pagination import Page
from cloud.entrypoints.api.problems import parse_body, parse_query
from cloud.service_layer.movements import pick_shipment, shipment_lines, step_shipment

bp = Blueprint("shipments", __name__, url_prefix="/api/shipments")
refusals(bp)


class NewShipment(ItemsStep):
    id: str
    order_id: str


class Load(Step):
    truck_zone_id: str


class Deliver(Step):
    zone_id: str


class ShipmentFilter(Page):
    state: str | None = None
    order_id: str | None = None


def shipment_json(db: Session, s: Shipment, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": s.id,
        "order_id": s.order_id,
        "truck_zone_id": s.truck_zone_id,
        "delivery_zone_id": s.delivery_zone_id,
        "state": s.state,
    }
    if full:
        body["items"] = lines_json(shipment_lines(db, s.id), ("loaded_at", "delivered_at"))
        body["history"] = history_json(db, ShipmentStateChange, "shipment_id", s.id)
    return body


SHIPMENTS = Movement(Shipment, "shipment", shipment_json)


@bp.get("")
@endpoint("viewer", query=ShipmentFilter)
def list_shipments() -> Any:
    """Shipments, newest first; filter by state or order_id."""
    given = parse_query(ShipmentFilter)
    query = select(Shipment).order_by(Shipment.created_at.desc(), Shipment.id)
    if given.state in SHIPMENT_STATES:
        query = query.where(Shipment.state == given.state)
    if given.order_id:
        query = query.where(Shipment.order_id == given.order_id)
    return SHIPMENTS.listing(query, given)


@bp.post("")
@endpoint("operator", body=NewShipment, status=201)
def create_shipment() -> Any:
    """Pick items against a customer's order."""
    given = parse_body(NewShipment)
    return SHIPMENTS.create(
        lambda db: pick_shipment(
            db, given.id, given.order_id, resolve_items(db, given.items), when(given)
        )
    )


@bp.get("/<ident>")
@endpoint("viewer")
def get_shipment(ident: str) -> Any:
    """One shipment with its items and state history."""
    return SHIPMENTS.show(ident)


def _step(ident: str, step: str, given: Step, zone_id: str | None = None) -> Any:
    return SHIPMENTS.step(
        ident, step, lambda db, row: step_shipment(db, row, step, when(given), zone_id)
    )


@bp.post("/<ident>/load")
@endpoint("operator", body=Load)
def load(ident: str) -> Any:
    """Every picked item goes onto the truck."""
    given = parse_body(Load)
    return _step(ident, "load", given, given.truck_zone_id)


@bp.post("/<ident>/ship")
@endpoint("operator", body=Step)
def ship(ident: str) -> Any:
    """The truck leaves for the customer."""
    return _step(ident, "ship", parse_body(Step, optional=True))


@bp.post("/<ident>/deliver")
@endpoint("operator", body=Deliver)
def deliver(ident: str) -> Any:
    """Handed over to the customer in a zone of the customer's site."""
    given = parse_body(Deliver)
    return _step(ident, "deliver", given, given.zone_id)
