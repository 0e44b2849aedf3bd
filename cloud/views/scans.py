"""Barcode scans as the API lists them: newest first, by read point and scan time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select

from cloud.adapters.orm.traceability import Scan
from cloud.views.pages import where_given


def scans(
    read_point_id: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> Select[Scan]:
    """Scans, newest first, scanned in [start, end] where given."""
    query = select(Scan).order_by(Scan.scanned_at.desc(), Scan.id.desc())
    query = where_given(query, Scan, read_point_id=read_point_id)
    if start is not None:
        query = query.where(Scan.scanned_at >= start)
    if end is not None:
        query = query.where(Scan.scanned_at <= end)
    return query
