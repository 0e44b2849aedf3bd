"""Master data (products, batches, items) validated row by row, checked against what is
stored, and added all together or not at all. CSV files and single JSON records share it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, model_validator
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from cloud.adapters.orm.traceability import BATCH_STATUSES, Batch, Item, Product
from edge.gs1 import check_digit


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _gtin(value: Any) -> Any:
    if isinstance(value, str) and value.isdigit() and len(value) in (8, 12, 13):
        value = value.zfill(14)  # GTIN-8/12/13 are GTIN-14 with leading zeros
    if not (isinstance(value, str) and len(value) == 14 and value.isdigit()):
        raise ValueError("a GTIN has 8, 12, 13 or 14 digits")
    if check_digit(value[:-1]) != value[-1]:
        raise ValueError(f"check digit should be {check_digit(value[:-1])}")
    return value


Gtin = Annotated[str, BeforeValidator(_gtin)]
Optional = BeforeValidator(_blank_is_none)
Standard = BeforeValidator(lambda v: "standard" if _blank_is_none(v) is None else v)


class ProductRow(BaseModel):
    gtin: Gtin
    name: str = Field(min_length=1, max_length=200)
    low: Annotated[float | None, Optional] = None
    high: Annotated[float | None, Optional] = None
    freeze_sensitive: Annotated[bool, Optional] = False
    humidity_max: Annotated[float | None, Optional] = Field(None, ge=0, le=100)
    stability_budget_min: Annotated[int | None, Optional] = Field(None, ge=0)
    shelf_life_days: Annotated[int | None, Optional] = Field(None, ge=1)
    # high: a hold on its batches is released by two QA (review, then approval)
    risk_class: Annotated[Literal["standard", "high"], Standard] = "standard"

    @model_validator(mode="after")
    def _range(self) -> ProductRow:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low {self.low} is not below high {self.high}")
        return self


class BatchRow(BaseModel):
    gtin: Gtin
    lot: str = Field(min_length=1, max_length=20)
    manufactured_on: Annotated[date | None, Optional] = None
    expires_on: date
    quantity: int = Field(ge=0)
    status: Annotated[str, Optional] = "available"

    @model_validator(mode="after")
    def _dates(self) -> BatchRow:
        if self.status not in BATCH_STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(BATCH_STATUSES)}")
        if self.manufactured_on is not None and self.manufactured_on > self.expires_on:
            raise ValueError("manufactured_on is after expires_on")
        return self


class ItemRow(BaseModel):
    gtin: Gtin
    serial: str = Field(min_length=1, max_length=20)
    lot: str = Field(min_length=1, max_length=20)
    epc: Annotated[str | None, Optional] = Field(None, pattern=r"^[0-9A-Fa-f]{24,128}$")


ROWS: dict[str, type[BaseModel]] = {"products": ProductRow, "batches": BatchRow, "items": ItemRow}


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str


class ImportRefused(ValueError):
    """Rows that cannot be added; nothing was."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors


def read_csv(kind: str, text: str) -> list[tuple[int, BaseModel]]:
    """Every row of the file validated, with its line number; ImportRefused lists all errors."""
    model = ROWS[kind]
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [c.strip() for c in reader.fieldnames or []]
    known = set(model.model_fields)
    required = {name for name, f in model.model_fields.items() if f.is_required()}
    errors = [RowError(1, c, "unknown column") for c in columns if c not in known]
    errors += [RowError(1, c, "missing column") for c in sorted(required - set(columns))]
    if errors:
        raise ImportRefused(errors)
    rows: list[tuple[int, BaseModel]] = []
    for raw in reader:
        line = reader.line_num
        if None in raw:
            errors.append(RowError(line, "(row)", "more cells than columns"))
            continue
        # A blank cell is an absent value: the column's default, or "Field required".
        values = {k.strip(): v.strip() for k, v in raw.items() if v is not None and v.strip()}
        try:
            rows.append((line, model.model_validate(values)))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                field = ".".join(str(p) for p in err["loc"]) or "(row)"
                errors.append(RowError(line, field, err["msg"]))
    if not rows and not errors:
        errors.append(RowError(1, "(file)", "no rows"))
    if errors:
        raise ImportRefused(errors)
    return rows


def add_rows(db: Session, kind: str, rows: list[tuple[int, BaseModel]]) -> list[Any]:
    """Check the rows against each other and the database, then add them all (or none)."""
    check = {"products": _products, "batches": _batches, "items": _items}[kind]
    records, errors = check(db, rows)
    if errors:
        raise ImportRefused(errors)
    db.add_all(records)
    db.flush()
    return records


def _duplicates(rows: list[tuple[int, Any]], key: Any, field: str) -> list[RowError]:
    seen: dict[Any, int] = {}
    errors = []
    for line, row in rows:
        k = key(row)
        if k in seen:
            errors.append(RowError(line, field, f"repeats line {seen[k]}"))
        seen.setdefault(k, line)
    return errors


def _products(db: Session, rows: list[tuple[int, Any]]) -> tuple[list[Any], list[RowError]]:
    errors = _duplicates(rows, lambda r: r.gtin, "gtin")
    stored = set(
        db.scalars(select(Product.gtin).where(Product.gtin.in_([r.gtin for _, r in rows])))
    )
    errors += [RowError(n, "gtin", f"product {r.gtin} exists") for n, r in rows if r.gtin in stored]
    return [Product(**r.model_dump(exclude={"reason"})) for _, r in rows], errors


def _batches(db: Session, rows: list[tuple[int, Any]]) -> tuple[list[Any], list[RowError]]:
    errors = _duplicates(rows, lambda r: (r.gtin, r.lot), "lot")
    gtins = {r.gtin for _, r in rows}
    known = set(db.scalars(select(Product.gtin).where(Product.gtin.in_(gtins))))
    keys = [(r.gtin, r.lot) for _, r in rows]
    query = select(Batch.gtin, Batch.lot).where(tuple_(Batch.gtin, Batch.lot).in_(keys))
    stored = {tuple(row) for row in db.execute(query)}
    for line, r in rows:
        if r.gtin not in known:
            errors.append(RowError(line, "gtin", f"no product {r.gtin}"))
        if (r.gtin, r.lot) in stored:
            errors.append(RowError(line, "lot", f"batch {r.lot} of {r.gtin} exists"))
    return [Batch(**r.model_dump(exclude={"reason"})) for _, r in rows], errors


def _items(db: Session, rows: list[tuple[int, Any]]) -> tuple[list[Any], list[RowError]]:
    for _, r in rows:
        r.epc = r.epc.upper() if r.epc else None
    errors = _duplicates(rows, lambda r: (r.gtin, r.serial), "serial")
    errors += _duplicates([(n, r) for n, r in rows if r.epc], lambda r: r.epc, "epc")
    lots = [(r.gtin, r.lot) for _, r in rows]
    batch_of = {
        (b.gtin, b.lot): b.id
        for b in db.scalars(select(Batch).where(tuple_(Batch.gtin, Batch.lot).in_(lots)))
    }
    sgtins = [(r.gtin, r.serial) for _, r in rows]
    query = select(Item.gtin, Item.serial).where(tuple_(Item.gtin, Item.serial).in_(sgtins))
    stored = {tuple(row) for row in db.execute(query)}
    epcs = [r.epc for _, r in rows if r.epc]
    taken = set(db.scalars(select(Item.epc).where(Item.epc.in_(epcs)))) if epcs else set()
    records = []
    for line, r in rows:
        if (r.gtin, r.lot) not in batch_of:
            errors.append(RowError(line, "lot", f"no batch {r.lot} of {r.gtin}"))
        if (r.gtin, r.serial) in stored:
            errors.append(RowError(line, "serial", f"item (01){r.gtin}(21){r.serial} exists"))
        if r.epc in taken:
            errors.append(RowError(line, "epc", f"EPC {r.epc} is another item's"))
        batch_id = batch_of.get((r.gtin, r.lot), 0)
        records.append(Item(gtin=r.gtin, serial=r.serial, epc=r.epc, batch_id=batch_id))
    return records, errors
