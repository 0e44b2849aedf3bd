"""Items: list, read, register, and where each one is and was (custody)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.lookup import resolve_item
from cloud.entrypoints.api.pagination import Page, page_of
from cloud.entrypoints.api.problems import parse_body, parse_query
from cloud.entrypoints.api.records import register
from cloud.entrypoints.api.representations import interval_json, item_json
from cloud.service_layer.custody import current_custody, item_timeline
from cloud.service_layer.master_data import ItemRow
from cloud.views import records

bp = Blueprint("items", __name__, url_prefix="/api/items")


class ItemFilter(Page):
    gtin: str | None = None
    batch_id: int | None = None


class NewItem(ItemRow, Body):
    pass


@bp.get("")
@endpoint("read", query=ItemFilter)
def list_items() -> Any:
    """Items; filter by gtin or batch_id."""
    given = parse_query(ItemFilter)
    return page_of(records.items(given.gtin, given.batch_id), given, item_json)


@bp.post("")
@endpoint("master-data", body=NewItem, status=201)
def create_item() -> Any:
    """Register a serialised item of a batch (by gtin and lot)."""
    return register("items", parse_body(NewItem), item_json)


@bp.get("/<ref>")
@endpoint("read")
def get_item(ref: str) -> Any:
    """One item, by EPC (hex), (01)<gtin>(21)<serial> or <gtin>+<serial>."""
    return jsonify(item_json(resolve_item(get_db(), ref)))


@bp.get("/<ref>/custody")
@endpoint("read", query=Page)
def item_custody(ref: str) -> Any:
    """The item's custody timeline, oldest first."""
    page = parse_query(Page)
    db = get_db()
    return page_of(item_timeline(db, resolve_item(db, ref).id), page, interval_json)


@bp.get("/<ref>/custody/current")
@endpoint("read")
def where_is(ref: str) -> Any:
    """Where the item is now (custody null if it is not known to be anywhere)."""
    db = get_db()
    item = resolve_item(db, ref)
    now = current_custody(db, item.id)
    return jsonify({"item": item_json(item), "custody": now and interval_json(now)})
