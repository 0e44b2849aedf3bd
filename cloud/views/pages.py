"""Pages of a read model: a listing's query cut to limit/offset, with one row more fetched
to tell whether another page follows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session


def page(
    session: Session, rows: Select[Any] | list[Any], limit: int, offset: int
) -> tuple[list[Any], bool]:
    """The rows of one page (of a query or a list), and whether there are more after it."""
    if isinstance(rows, list):
        found = rows[offset : offset + limit + 1]
    else:
        query = rows.limit(limit + 1).offset(offset)
        result = session.execute(query)
        # One entity or column: its values; several columns: rows with attribute access.
        found = list(result.scalars() if len(query.column_descriptions) == 1 else result)
    return found[:limit], len(found) > limit


def where_given(query: Select[Any], model: Any, **values: object) -> Select[Any]:
    """The query narrowed to rows whose columns equal the values given (None or "": any)."""
    for column, value in values.items():
        if value is not None and value != "":
            query = query.where(getattr(model, column) == value)
    return query
