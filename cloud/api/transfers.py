"""Transfers between warehouses: plan, then load, depart and receive (domain lifecycle)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.contract import endpoint
from cloud.api.database import get_db
from cloud.api.lifecycle_store import plan_transfer, step_transfer, transfer_lines
from cloud.api.lookup import get_or_404
from cloud.api.movements import (
    ItemsStep,
    Ref,
    Step,
    history_json,
    refusals,
    resolve_items,
    time,
    when,
)
from cloud.api.pagination import Page, page_of
from cloud.api.problems import parse_body, parse_query
from cloud.traceability import TRANSFER_STATES, Transfer, TransferStateChange

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
        body["items"] = [
            {
                "element_string": f"(01){item.gtin}(21){item.serial}",
                "epc": item.epc,
                "loaded_at": time(line.loaded_at),
                "received_at": time(line.received_at),
                "discrepancy": line.discrepancy,
            }
            for line, item in transfer_lines(db, t.id)
        ]
        body["history"] = history_json(db, TransferStateChange, "transfer_id", t.id)
    return body


@bp.get("")
@endpoint("viewer", query=TransferFilter)
def list_transfers() -> Any:
    """Transfers, newest first; filter by state."""
    given = parse_query(TransferFilter)
    query = select(Transfer).order_by(Transfer.created_at.desc(), Transfer.id)
    if given.state in TRANSFER_STATES:
        query = query.where(Transfer.state == given.state)
    db = get_db()
    return page_of(query, given, lambda t: transfer_json(db, t, full=False))


@bp.post("")
@endpoint("operator", body=NewTransfer, status=201)
def create_transfer() -> Any:
    """Plan a transfer of items between two warehouses."""
    given = parse_body(NewTransfer)
    db = get_db()
    items = resolve_items(db, given.items)
    row = plan_transfer(
        db, given.id, given.origin_site_id, given.destination_site_id, items, when(given)
    )
    db.commit()
    return jsonify(transfer_json(db, row)), 201


@bp.get("/<ident>")
@endpoint("viewer")
def get_transfer(ident: str) -> Any:
    """One transfer with its items and state history."""
    db = get_db()
    return jsonify(transfer_json(db, get_or_404(db, Transfer, ident, f"transfer {ident}")))


@bp.post("/<ident>/load")
@endpoint("operator", body=Load)
def load(ident: str) -> Any:
    """Load planned items onto the truck (again, for more items)."""
    given = parse_body(Load)
    db = get_db()
    row = get_or_404(db, Transfer, ident, f"transfer {ident}")
    items = resolve_items(db, given.items)
    step_transfer(db, row, "load", when(given), items, given.truck_zone_id)
    db.commit()
    return jsonify(transfer_json(db, row))


@bp.post("/<ident>/depart")
@endpoint("operator", body=Step)
def depart(ident: str) -> Any:
    """The truck leaves the origin."""
    given = parse_body(Step, optional=True)
    db = get_db()
    row = get_or_404(db, Transfer, ident, f"transfer {ident}")
    step_transfer(db, row, "depart", when(given))
    db.commit()
    return jsonify(transfer_json(db, row))


@bp.post("/<ident>/receive")
@endpoint("operator", body=Receive)
def receive(ident: str) -> Any:
    """What arrived goes into a zone at the destination; differences become discrepancies."""
    given = parse_body(Receive)
    db = get_db()
    row = get_or_404(db, Transfer, ident, f"transfer {ident}")
    items = resolve_items(db, given.items)
    step_transfer(db, row, "receive", when(given), items, given.zone_id)
    db.commit()
    return jsonify(transfer_json(db, row))
