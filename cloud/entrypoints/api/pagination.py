"""limit/offset pages with a `next` link in the body and in a Link header (RFC 8288)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from flask import Response, jsonify, request, url_for
from pydantic import AwareDatetime, BeforeValidator, Field
from sqlalchemy import Select

from cloud.entrypoints.api.contract import Query
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.problems import invalid
from cloud.views.pages import page as page_rows


def _plus_back(value: Any) -> Any:
    # An unencoded "+01:00" in a query string arrives as " 01:00".
    return value.replace(" ", "+") if isinstance(value, str) else value


Instant = Annotated[AwareDatetime, BeforeValidator(_plus_back)]


class Page(Query):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)


class TimeWindow(Page):
    """A page of records in [from, to] (ISO 8601 with an offset; both optional)."""

    start: Instant | None = Field(None, alias="from")
    end: Instant | None = Field(None, alias="to")


def window_bounds(window: TimeWindow) -> tuple[datetime | None, datetime | None]:
    if window.start and window.end and window.start > window.end:
        raise invalid(400, "from is after to", [{"field": "from", "message": "after to"}])
    return window.start, window.end


def page_of(
    rows: Select[Any] | list[Any], page: Page, render: Callable[[Any], dict[str, Any]]
) -> Response:
    """One page of the query's rows (or of a list) as {items, limit, offset, next}."""
    shown, more = page_rows(get_db(), rows, page.limit, page.offset)
    next_url = None
    if more:
        args: dict[str, Any] = {
            **request.args.to_dict(),
            "limit": page.limit,
            "offset": page.offset + page.limit,
        }
        next_url = url_for(request.endpoint or "", **(request.view_args or {}), **args)
    response = jsonify(
        {
            "items": [render(row) for row in shown],
            "limit": page.limit,
            "offset": page.offset,
            "next": next_url,
        }
    )
    if next_url is not None:
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return response
