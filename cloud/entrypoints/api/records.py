"""What master-record routes share: for sites, zones, customers and orders find, list,
show, create with its references checked, and change the fields given (an audited update
for audited records: the reason comes with the request); for products, batches and items
one record registered as an imported row would be."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from flask import Response, jsonify
from pydantic import BaseModel
from sqlalchemy.orm import Session

from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.lookup import get_or_404
from cloud.entrypoints.api.pagination import Page, page_of
from cloud.entrypoints.api.problems import Problem, invalid
from cloud.service_layer.master_data import ImportRefused, add_rows

R = TypeVar("R")
# field -> (model, what) a given value must name, e.g. "site_id": (Site, "site")
References = dict[str, tuple[type, str]]


def unknown_reference(detail: str) -> Problem:
    return Problem(422, "unknown-reference", "Unknown reference", detail)


def import_refused(exc: ImportRefused) -> Problem:
    errors = [{"field": e.field, "message": e.message} for e in exc.errors]
    return invalid(422, "; ".join(f"{e.field}: {e.message}" for e in exc.errors), errors)


def register(kind: str, given: BaseModel, render: Callable[[Any], dict[str, Any]]) -> Any:
    """Add one product, batch or item, checked against what is stored like a CSV row."""
    db = get_db()
    try:
        (row,) = add_rows(db, kind, [(1, given)])
    except ImportRefused as exc:
        raise import_refused(exc) from exc
    db.commit()
    return jsonify(render(row)), 201


@dataclass(frozen=True)
class Records(Generic[R]):
    """One kind of master record: its model, what it is called, and how it looks."""

    model: type[R]
    what: str
    render: Callable[[R], dict[str, Any]]
    references: References = field(default_factory=dict)

    def find(self, db: Session, key: Any) -> R:
        return get_or_404(db, self.model, key, f"{self.what} {key}")

    def listing(self, query: Any, page: Page) -> Response:
        return page_of(query, page, self.render)

    def show(self, key: Any) -> Response:
        return jsonify(self.render(self.find(get_db(), key)))

    def check(self, db: Session, values: dict[str, Any]) -> None:
        for name, (model, what) in self.references.items():
            value = values.get(name)
            if value is not None and db.get(model, value) is None:
                raise unknown_reference(f"{name}: {what} {value} does not exist")

    def create(self, given: BaseModel, key: str = "id") -> tuple[Response, int]:
        db = get_db()
        values = given.model_dump(exclude={"reason"})
        if db.get(self.model, values[key]) is not None:
            raise Problem(409, "conflict", "Conflict", f"{self.what} {values[key]} exists already")
        self.check(db, values)
        row = self.model(**values)
        db.add(row)
        db.commit()
        return jsonify(self.render(row)), 201

    def change(
        self, key: Any, given: BaseModel, check: Callable[[R], None] | None = None
    ) -> Response:
        db = get_db()
        row = self.find(db, key)
        values = given.model_dump(exclude={"reason"}, exclude_unset=True)
        self.check(db, values)
        for name, value in values.items():
            setattr(row, name, value)
        if check is not None:
            check(row)
        db.commit()
        return jsonify(self.render(row))
