"""Transfers between warehouses: plan, then load, depart and receive (domain lifecycle)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.traceability import TRANSFER_STATES, Transfer, TransferStateChange
from cloud.entrypoints.api.contract import endpoint
from cloud.entrypoints.api.movements import (
    ItemsStep,
    Movement,
    Ref,
    Step,
    history_json,
    lines_json,
    refusals,
    resolve_items,
    when,
)
from cloud.entrypoints.api.pagination import Page
from cloud.entrypoints.api.problems import parse_body, parse_query
from cloud.service_layer.movements import plan_transfer, step_transfer, transfer_lines

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


def transfer_json(db: Session, t: Transfer, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": t.id,
        "origin_site_id": t.origin_site_id,
        "destination_site_id": t.destination_site_id,
        "truck_zone_id": t.truck_zone_id,
        "receiving_zone_id": t.receiving_zone_id,
        "state": t.state,
    }
    if full:
        lines = transfer_lines(db, t.id)
        body["items"] = lines_json(lines, ("loaded_at", "received_at"), "discrepancy")
        body["history"] = history_json(db, TransferStateChange, "transfer_id", t.id)
    return body


TRANSFERS = Movement(Transfer, "transfer", transfer_json)


@bp.get("")
@endpoint("viewer", query=TransferFilter)
def list_transfers() -> Any:
    """Transfers, newest first; filter by state."""
    given = parse_query(TransferFilter)
    query = select(Transfer).order_by(Transfer.created_at.desc(), Transfer.id)
    if given.state in TRANSFER_STATES:
        query = query.where(Transfer.state == given.state)
    return TRANSFERS.listing(query, given)


@bp.post("")
@endpoint("operator", body=NewTransfer, status=201)
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
@endpoint("viewer")
def get_transfer(ident: str) -> Any:
    """One transfer with its items and state history."""
    return TRANSFERS.show(ident)


@bp.post("/<ident>/load")
@endpoint("operator", body=Load)
def load(ident: str) -> Any:
    """Load planned items onto the truck (again, for more items)."""
    given = parse_body(Load)
    return TRANSFERS.step(
        ident,
        "load",
        lambda db, row: step_transfer(
            db, row, "load", when(given), resolve_items(db, given.items), given.truck_zone_id
        ),
    )


@bp.post("/<ident>/depart")
@endpoint("operator", body=Step)
def depart(ident: str) -> Any:
    """The truck leaves the origin."""
    given = parse_body(Step, optional=True)
    return TRANSFERS.step(
        ident, "depart", lambda db, row: step_transfer(db, row, "depart", when(given))
    )


@bp.post("/<ident>/receive")
@endpoint("operator", body=Receive)
def receive(ident: str) -> Any:
    """What arrived goes into a zone at the destination; differences become discrepancies."""
    given = parse_body(Receive)
    return TRANSFERS.step(
        ident,
        "receive",
        lambda db, row: step_transfer(
            db, row, "receive", when(given), resolve_items(db, given.items), given.zone_id
        ),
    )
