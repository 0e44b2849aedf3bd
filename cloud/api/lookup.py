"""Finding the record a URL names, or a 404 problem that says which one is missing."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.problems import Problem, not_found
from cloud.custody_service import find_item
from cloud.traceability import Item
from edge.gs1 import ElementStringError, parse_bracketed

T = TypeVar("T")
HEX_EPC = re.compile(r"[0-9A-Fa-f]{24,}")


def get_or_404(db: Session, model: type[T], key: Any, what: str) -> T:
    found = db.get(model, key)
    if found is None:
        raise not_found(what)
    return found


def resolve_item(db: Session, ref: str) -> Item:
    """An item by EPC (hex), element string (01)<gtin>(21)<serial>, or <gtin>+<serial>."""
    if HEX_EPC.fullmatch(ref):
        item = db.scalars(select(Item).where(Item.epc == ref.upper())).first()
        if item is None:
            raise not_found(f"item with EPC {ref}")
        return item
    gtin, plus, serial = ref.partition("+")
    if not plus:
        try:
            parsed = parse_bracketed(ref)
        except ElementStringError as exc:
            raise _bad_ref(ref) from exc
        gtin, serial = parsed.gtin or "", parsed.get("21") or ""
    if not gtin or not serial:
        raise _bad_ref(ref)
    item = find_item(db, gtin, serial)
    if item is None:
        raise not_found(f"item (01){gtin}(21){serial}")
    return item


def _bad_ref(ref: str) -> Problem:
    return Problem(
        400,
        "bad-item-reference",
        "Bad item reference",
        f"{ref!r} is not an EPC (hex), (01)<gtin>(21)<serial> or <gtin>+<serial>",
    )
