"""Transfers between warehouses: plan, then load, depart and receive (domain lifecycle)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from cloud.entrypoints.api.contract import endpoint
from cloud.entrypoints.api.movements import (
    ItemsStep,
    MovementKind,
    Ref,
    ReleaseForShipment,
    Step,
    refusals,
    resolve_items,
    when,
)
from cloud.entrypoints.api.pagination import Page
from cloud.entrypoints.api.problems import parse_body, parse_query
from cloud.service_layer.movements import TRANSFER, plan_transfer
from cloud.views.transfers import records

bp = Blueprint("transfers", __name__, url_prefix="/api/transfers")
refusals(bp)


class NewTransfer(Step):
    id: str
    origin_site_id: str
    destination_site_id: str
    items: list[Ref]


class Load(ItemsStep):
    truck_zone_id: str


class Receive(Step):
    items: list[Ref]
    zone_id: str


class TransferFilter(Page):
    state: str | None = None


TRANSFERS = MovementKind(
    TRANSFER,
    (
        "id",
        "origin_site_id",
        "destination_site_id",
        "truck_zone_id",
        "receiving_zone_id",
        "state",
    ),
    ("loaded_at", "received_at"),
    ("discrepancy",),
)


@bp.get("")
@endpoint("read", query=TransferFilter)
def list_transfers() -> Any:
    """Transfers, newest first; filter by state."""
    given = parse_query(TransferFilter)
    return TRANSFERS.listing(records(TRANSFER, given.state), given)


@bp.post("")
@endpoint("movements", body=NewTransfer, status=201)
def create_transfer() -> Any:
    """Plan a transfer of items between two warehouses."""
    given = parse_body(NewTransfer)
    return TRANSFERS.create(
        lambda db: plan_transfer(
            db,
            given.id,
            given.origin_site_id,
            given.destination_site_id,
            resolve_items(db, given.items),
            when(given),
        )
    )


@bp.get("/<ident>")
@endpoint("read")
def get_transfer(ident: str) -> Any:
    """One transfer with its items and state history."""
    return TRANSFERS.show(ident)


@bp.get("/<ident>/release")
@endpoint("read")
def release_manifest(ident: str) -> Any:
    """The transfer's release for shipment: each batch's stability budget left, MKT and open
    excursions, whether loading needs QA's signed release, and the signed release if any."""
    return TRANSFERS.release_manifest(ident)


@bp.post("/<ident>/release")
@endpoint("shipment_release", body=ReleaseForShipment, status=201)
def release(ident: str) -> Any:
    """QA releases the transfer's batches for shipment: an electronic signature (meaning
    shipment_release) over their temperature evidence; loading 2-8 C or frozen goods needs it."""
    return TRANSFERS.release(ident, parse_body(ReleaseForShipment))


@bp.post("/<ident>/load")
@endpoint("movements", body=Load)
def load(ident: str) -> Any:
    """Load planned items onto the truck (again, for more items); refused (409) for 2-8 C
    or frozen goods without QA's signed release for shipment."""
    given = parse_body(Load)
    return TRANSFERS.step(ident, "load", given, given.truck_zone_id, given.items)


@bp.post("/<ident>/depart")
@endpoint("movements", body=Step)
def depart(ident: str) -> Any:
    """The truck leaves the origin."""
    return TRANSFERS.step(ident, "depart", parse_body(Step, optional=True))


@bp.post("/<ident>/receive")
@endpoint("movements", body=Receive)
def receive(ident: str) -> Any:
    """What arrived goes into a zone at the destination; differences become discrepancies."""
    given = parse_body(Receive)
    return TRANSFERS.step(ident, "receive", given, given.zone_id, given.items)
