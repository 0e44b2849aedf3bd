"""Barcode scans as the API lists them: newest first, by read point and scan time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select

from cloud.adapters.orm.traceability import Scan


def scans(
    read_point_id: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> Select[tuple[Scan]]:
    """Scans, newest first, scanned in [start, end] where given."""
    query = select(Scan).order_by(Scan.scanned_at.desc(), Scan.id.desc())
    if read_point_id:
        query = query.where(Scan.read_point_id == read_point_id)
    if start is not None:
        query = query.where(Scan.scanned_at >= start)
    if end is not None:
        query = query.where(Scan.scanned_at <= end)
    return query
