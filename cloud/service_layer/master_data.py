"""Master data (products, batches, items) validated row by row, checked against what is
stored, and added all together or not at all. CSV files and single JSON records share it."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, model_validator
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from cloud.adapters.orm.traceability import BATCH_STATUSES, Batch, Item, Product
from cloud.domain.csv_cells import CsvError, records
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


REGISTERED = ("available", "expired")  # what master data may say; the rest is QA's


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
        if self.status not in REGISTERED:
            raise ValueError(
                f"a batch is registered {' or '.join(REGISTERED)}, not {self.status}: holds, "
                "rejections and recalls follow their workflows (holds, recalls)"
            )
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


def read_csv(kind: str, text: str | Iterable[str]) -> list[tuple[int, BaseModel]]:
    """Every row of the file validated, with the line it began on; ImportRefused lists all
    errors (a malformed file stops at the record where it went wrong, see
    cloud.domain.csv_cells). `text` is the whole file or its lines."""
    model = ROWS[kind]
    lines = io.StringIO(text) if isinstance(text, str) else text
    found = records(lines)
    try:
        _, header = next(found, (1, []))
    except CsvError as exc:
        raise ImportRefused([RowError(exc.line, "(file)", exc.message)]) from exc
    columns = [c.strip() for c in header]
    if columns:
        columns[0] = columns[0].lstrip("\ufeff")
    known = set(model.model_fields)
    required = {name for name, f in model.model_fields.items() if f.is_required()}
    errors = [RowError(1, c, "unknown column") for c in columns if c not in known]
    errors += [RowError(1, c, "missing column") for c in sorted(required - set(columns))]
    errors += [RowError(1, c, "repeated column") for c in sorted(_repeated(columns))]
    if errors:
        raise ImportRefused(errors)
    rows: list[tuple[int, BaseModel]] = []
    try:
        for line, cells in found:
            if cells == [] or cells == [""]:
                continue  # a blank line
            if len(cells) != len(columns):
                more = "more" if len(cells) > len(columns) else "fewer"
                errors.append(
                    RowError(
                        line, "(row)", f"{len(cells)} cells: {more} than the {len(columns)} columns"
                    )
                )
                continue
            # A blank cell is an absent value: the column's default, or "Field required".
            values = {c: v.strip() for c, v in zip(columns, cells, strict=True) if v.strip()}
            try:
                rows.append((line, model.model_validate(values)))
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    field = ".".join(str(p) for p in err["loc"]) or "(row)"
                    errors.append(RowError(line, field, err["msg"]))
    except CsvError as exc:
        errors.append(RowError(exc.line, "(file)", exc.message))
    if not rows and not errors:
        errors.append(RowError(1, "(file)", "no rows"))
    if errors:
        raise ImportRefused(errors)
    return rows


def _repeated(columns: list[str]) -> set[str]:
    return {c for c in columns if columns.count(c) > 1}


def add_rows(db: Session, kind: str, rows: list[tuple[int, BaseModel]]) -> list[Any]:
    """Check the rows against each other and the database, then add them all (or none)."""
    check = {"products": _products, "batches": _batches, "items": _items}[kind]
    records, errors = check(db, rows)
    if errors:
        raise ImportRefused(errors)
    db.add_all(records)
    db.flush()
    return records


LOOKUP = 2_000  # keys a query looks up at once: far below any driver's parameter limit


def _parts(keys: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(keys), LOOKUP):
        yield keys[start : start + LOOKUP]


def _found(db: Session, query: Callable[[list[Any]], Any], keys: Iterable[Any]) -> set[Any]:
    """Which of `keys` the query (of the key's columns) finds stored, a part at a time."""
    found: set[Any] = set()
    for part in _parts(sorted(set(keys))):
        for row in db.execute(query(part)):
            found.add(row[0] if len(row) == 1 else tuple(row))
    return found


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
    stored = _found(
        db,
        lambda part: select(Product.gtin).where(Product.gtin.in_(part)),
        [r.gtin for _, r in rows],
    )
    errors += [RowError(n, "gtin", f"product {r.gtin} exists") for n, r in rows if r.gtin in stored]
    return [Product(**r.model_dump(exclude={"reason"})) for _, r in rows], errors


def _batches(db: Session, rows: list[tuple[int, Any]]) -> tuple[list[Any], list[RowError]]:
    errors = _duplicates(rows, lambda r: (r.gtin, r.lot), "lot")
    gtins = {r.gtin for _, r in rows}
    known = _found(db, lambda part: select(Product.gtin).where(Product.gtin.in_(part)), gtins)
    stored = _found(
        db,
        lambda part: select(Batch.gtin, Batch.lot).where(tuple_(Batch.gtin, Batch.lot).in_(part)),
        [(r.gtin, r.lot) for _, r in rows],
    )
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
    lots = sorted({(r.gtin, r.lot) for _, r in rows})
    batch_of: dict[tuple[str, str], int] = {}
    for part in _parts(lots):
        query = select(Batch.gtin, Batch.lot, Batch.id).where(
            tuple_(Batch.gtin, Batch.lot).in_(part)
        )
        batch_of.update(((gtin, lot), id_) for gtin, lot, id_ in db.execute(query))
    stored = _found(
        db,
        lambda part: select(Item.gtin, Item.serial).where(tuple_(Item.gtin, Item.serial).in_(part)),
        [(r.gtin, r.serial) for _, r in rows],
    )
    taken = _found(
        db,
        lambda part: select(Item.epc).where(Item.epc.in_(part)),
        [r.epc for _, r in rows if r.epc],
    )
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
