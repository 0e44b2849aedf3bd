"""Finding the record a URL names, or a 404 problem that says which one is missing."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.orm import Session

from cloud.adapters.orm.traceability import Item
from cloud.entrypoints.api.problems import Problem, not_found
from cloud.service_layer.custody import item_by_reference

T = TypeVar("T")


def get_or_404(db: Session, model: type[T], key: Any, what: str) -> T:
    found = db.get(model, key)
    if found is None:
        raise not_found(what)
    return found


def resolve_item(db: Session, ref: str) -> Item:
    """An item by EPC (hex), element string (01)<gtin>(21)<serial>, or <gtin>+<serial>."""
    try:
        item = item_by_reference(db, ref)
    except ValueError as exc:
        raise Problem(400, "bad-item-reference", "Bad item reference", str(exc)) from exc
    if item is None:
        raise not_found(f"item {ref}")
    return item
