"""Barcode scans from handhelds: stored as sightings, and the custody they change rebuilt."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from pydantic import AwareDatetime, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import ReadPoint
from cloud.adapters.orm.traceability import Aggregation, Scan
from cloud.domain.clock import utcnow
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.pagination import TimeWindow, page_of, window_bounds
from cloud.entrypoints.api.problems import invalid, parse_body, parse_query
from cloud.entrypoints.api.representations import scan_json
from cloud.service_layer.custody import find_item, rebuild_custody, record_scan

bp = Blueprint("scans", __name__, url_prefix="/api/scans")


class NewScan(Body):
    data: str = Field(min_length=3, description="Scanner output with its AIM identifier (]d2...)")
    read_point_id: str
    scanned_at: AwareDatetime | None = None


class ScanFilter(TimeWindow):
    read_point_id: str | None = None


def items_scanned(db: Session, scan: Scan) -> set[int]:
    """The items a scan places: the item itself, or everything packed in the unit."""
    if scan.gtin and scan.serial:
        item = find_item(db, scan.gtin, scan.serial)
        return {item.id} if item is not None else set()
    ids: set[int] = set()
    units, seen = {scan.sscc}, set()
    while units:
        seen |= units
        links = list(db.scalars(select(Aggregation).where(Aggregation.parent_sscc.in_(units))))
        ids |= {a.child_item_id for a in links if a.child_item_id is not None}
        units = {a.child_sscc for a in links if a.child_sscc is not None} - seen
    return ids


@bp.post("")
@endpoint("operator", body=NewScan, status=201)
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
@endpoint("viewer", query=ScanFilter)
def list_scans() -> Any:
    """Scans, newest first; filter by read_point_id and from/to (scan time)."""
    given = parse_query(ScanFilter)
    start, end = window_bounds(given)
    query = select(Scan).order_by(Scan.scanned_at.desc(), Scan.id.desc())
    if given.read_point_id:
        query = query.where(Scan.read_point_id == given.read_point_id)
    if start is not None:
        query = query.where(Scan.scanned_at >= start)
    if end is not None:
        query = query.where(Scan.scanned_at <= end)
    return page_of(query, given, scan_json)
