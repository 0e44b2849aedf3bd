"""A zone's suppression windows (planned disturbances) as the API lists them."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import SuppressionWindow


def windows(zone_id: str) -> Select[SuppressionWindow]:
    """The zone's suppression windows, newest first."""
    return (
        select(SuppressionWindow)
        .where(SuppressionWindow.zone_id == zone_id)
        .order_by(SuppressionWindow.started_at.desc(), SuppressionWindow.id.desc())
    )


def last_added(session: Session, zone_id: str) -> SuppressionWindow | None:
    """The zone's most recently added suppression window."""
    query = (
        select(SuppressionWindow)
        .where(SuppressionWindow.zone_id == zone_id)
        .order_by(SuppressionWindow.id.desc())
    )
    return session.scalars(query).first()
