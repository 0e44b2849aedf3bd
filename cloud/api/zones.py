"""What is in a zone now, and what was there between two times."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from pydantic import Field

from cloud.api.contract import endpoint
from cloud.api.database import get_db
from cloud.api.lookup import get_or_404
from cloud.api.pagination import Instant, Page, TimeWindow, page_of, window_bounds
from cloud.api.problems import parse_query
from cloud.api.representations import interval_json, item_json
from cloud.custody_service import items_in_zone, zone_window_query
from cloud.models import Zone

bp = Blueprint("zones", __name__, url_prefix="/api/zones")


class Between(TimeWindow):
    """Both ends required."""

    start: Instant = Field(alias="from")
    end: Instant = Field(alias="to")


@bp.get("/<zone_id>/items")
@endpoint("viewer", query=Page)
def in_zone_now(zone_id: str) -> Any:
    """The items in the zone now."""
    page = parse_query(Page)
    db = get_db()
    get_or_404(db, Zone, zone_id, f"zone {zone_id}")
    return page_of(items_in_zone(db, zone_id), page, item_json)


@bp.get("/<zone_id>/custody")
@endpoint("viewer", query=Between)
def in_zone_between(zone_id: str) -> Any:
    """The custody intervals in the zone touching [from, to] (both required, ISO 8601)."""
    window = parse_query(Between)
    start, end = window_bounds(window)
    db = get_db()
    get_or_404(db, Zone, zone_id, f"zone {zone_id}")
    assert start is not None and end is not None
    return page_of(zone_window_query(zone_id, start, end), window, interval_json)
