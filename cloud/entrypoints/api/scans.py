"""Barcode scans from handhelds: stored as sightings, and the custody they change rebuilt."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from pydantic import AwareDatetime, Field

from cloud.adapters.orm.readings import ReadPoint
from cloud.domain.clock import utcnow
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.pagination import TimeWindow, page_of, window_bounds
from cloud.entrypoints.api.problems import invalid, parse_body, parse_query
from cloud.entrypoints.api.representations import scan_json
from cloud.service_layer.custody import items_scanned, rebuild_custody, record_scan
from cloud.views import scans as scan_views

bp = Blueprint("scans", __name__, url_prefix="/api/scans")


class NewScan(Body):
    data: str = Field(min_length=3, description="Scanner output with its AIM identifier (]d2...)")
    read_point_id: str
    scanned_at: AwareDatetime | None = None


class ScanFilter(TimeWindow):
    read_point_id: str | None = None


@bp.post("")
@endpoint("scan", body=NewScan, status=201)
def scan() -> Any:
    """Record a scan (GS1 element string or Digital Link with its symbology identifier)."""
    given = parse_body(NewScan)
    db = get_db()
    if db.get(ReadPoint, given.read_point_id) is None:
        errors = [{"field": "read_point_id", "message": "no such read point"}]
        raise invalid(422, f"read point {given.read_point_id} does not exist", errors)
    try:
        stored = record_scan(
            db, given.data, given.read_point_id, given.scanned_at or utcnow(), g.user.username
        )
    except ValueError as exc:
        raise invalid(422, str(exc), [{"field": "data", "message": str(exc)}]) from exc
    db.flush()
    items = items_scanned(db, stored)
    rebuild_custody(db, items)
    db.commit()
    return jsonify({**scan_json(stored), "items_placed": len(items)}), 201


@bp.get("")
@endpoint("read", query=ScanFilter)
def list_scans() -> Any:
    """Scans, newest first; filter by read_point_id and from/to (scan time)."""
    given = parse_query(ScanFilter)
    start, end = window_bounds(given)
    return page_of(scan_views.scans(given.read_point_id, start, end), given, scan_json)
