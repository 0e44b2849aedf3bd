"""Readings set aside, as an admin reads them: those the rules quarantined (decision 0022,
`quarantined_readings`) and those whose time cannot be believed (decision 0021,
`implausible_readings`), newest first, by gateway and sensor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select

from cloud.adapters.orm.quality import QuarantinedReading
from cloud.adapters.orm.readings import ImplausibleReading
from cloud.views.pages import where_given


@dataclass(frozen=True)
class SetAsideFilter:
    """Which readings: every field given narrows them (None: any)."""

    gateway_id: str | None = None
    sensor_id: str | None = None
    since: datetime | None = None  # received at or after
    until: datetime | None = None


def quarantined_readings(given: SetAsideFilter) -> Select[QuarantinedReading]:
    """Readings the rules could not evaluate, newest quarantined first."""
    table = QuarantinedReading
    query = where_given(
        select(table), table, gateway_id=given.gateway_id, sensor_id=given.sensor_id
    )
    if given.since is not None:
        query = query.where(table.received_at >= given.since)
    if given.until is not None:
        query = query.where(table.received_at <= given.until)
    return query.order_by(table.quarantined_at.desc(), table.gateway_id, table.seq.desc())


def implausible_readings(given: SetAsideFilter) -> Select[ImplausibleReading]:
    """Readings with implausible times, newest received first."""
    table = ImplausibleReading
    query = where_given(
        select(table), table, gateway_id=given.gateway_id, sensor_id=given.sensor_id
    )
    if given.since is not None:
        query = query.where(table.received_at >= given.since)
    if given.until is not None:
        query = query.where(table.received_at <= given.until)
    return query.order_by(table.received_at.desc(), table.gateway_id, table.seq.desc())
