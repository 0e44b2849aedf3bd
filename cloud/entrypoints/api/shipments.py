"""Shipments to customers: pick against an order, then load, ship and deliver."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from cloud.entrypoints.api.contract import endpoint
from cloud.entrypoints.api.movements import (
    ItemsStep,
    MovementKind,
    ReleaseForShipment,
    Step,
    refusals,
    resolve_items,
    when,
)
from cloud.entrypoints.api.pagination import Page
from cloud.entrypoints.api.problems import parse_body, parse_query
from cloud.service_layer.movements import SHIPMENT, pick_shipment
from cloud.views.transfers import records

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


SHIPMENTS = MovementKind(
    SHIPMENT,
    ("id", "order_id", "truck_zone_id", "delivery_zone_id", "state"),
    ("loaded_at", "delivered_at"),
)


@bp.get("")
@endpoint("read", query=ShipmentFilter)
def list_shipments() -> Any:
    """Shipments, newest first; filter by state or order_id."""
    given = parse_query(ShipmentFilter)
    return SHIPMENTS.listing(records(SHIPMENT, given.state, given.order_id), given)


@bp.post("")
@endpoint("movements", body=NewShipment, status=201)
def create_shipment() -> Any:
    """Pick items against a customer's order."""
    given = parse_body(NewShipment)
    return SHIPMENTS.create(
        lambda db: pick_shipment(
            db, given.id, given.order_id, resolve_items(db, given.items), when(given)
        )
    )


@bp.get("/<ident>")
@endpoint("read")
def get_shipment(ident: str) -> Any:
    """One shipment with its items and state history."""
    return SHIPMENTS.show(ident)


@bp.get("/<ident>/release")
@endpoint("read")
def release_manifest(ident: str) -> Any:
    """The shipment's release for shipment: each batch's stability budget left, MKT and open
    excursions, whether loading needs QA's signed release, and the signed release if any."""
    return SHIPMENTS.release_manifest(ident)


@bp.post("/<ident>/release")
@endpoint("shipment_release", body=ReleaseForShipment, status=201)
def release(ident: str) -> Any:
    """QA releases the shipment's batches for shipment: an electronic signature (meaning
    shipment_release) over their temperature evidence; loading 2-8 C or frozen goods needs it."""
    return SHIPMENTS.release(ident, parse_body(ReleaseForShipment))


@bp.post("/<ident>/load")
@endpoint("movements", body=Load)
def load(ident: str) -> Any:
    """Every picked item goes onto the truck; refused (409) for 2-8 C or frozen goods
    without QA's signed release for shipment."""
    given = parse_body(Load)
    return SHIPMENTS.step(ident, "load", given, given.truck_zone_id)


@bp.post("/<ident>/ship")
@endpoint("movements", body=Step)
def ship(ident: str) -> Any:
    """The truck leaves for the customer."""
    return SHIPMENTS.step(ident, "ship", parse_body(Step, optional=True))


@bp.post("/<ident>/deliver")
@endpoint("movements", body=Deliver)
def deliver(ident: str) -> Any:
    """Handed over to the customer in a zone of the customer's site."""
    given = parse_body(Deliver)
    return SHIPMENTS.step(ident, "deliver", given, given.zone_id)
