"""Readings set aside (admin): those the rules quarantined and those with implausible times."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from pydantic import Field

from cloud.entrypoints.api.contract import endpoint
from cloud.entrypoints.api.pagination import Instant, Page, page_of
from cloud.entrypoints.api.problems import parse_query
from cloud.views.set_aside import SetAsideFilter, implausible_readings, quarantined_readings

bp = Blueprint("set_aside", __name__, url_prefix="/api")


class Filter(Page):
    gateway: str | None = Field(None, max_length=64)
    sensor: str | None = Field(None, max_length=64)
    since: Instant | None = None
    until: Instant | None = None


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _chosen() -> tuple[Filter, SetAsideFilter]:
    given = parse_query(Filter)
    return given, SetAsideFilter(given.gateway, given.sensor, given.since, given.until)


def quarantined_json(r: Any) -> dict[str, Any]:
    return {
        "gateway_id": r.gateway_id,
        "seq": r.seq,
        "sensor_id": r.sensor_id,
        "taken_at": _time(r.taken_at),
        "received_at": _time(r.received_at),
        "worker_id": r.worker_id,
        "reason": r.reason,
        "quarantined_at": _time(r.quarantined_at),
    }


def implausible_json(r: Any) -> dict[str, Any]:
    return {
        "gateway_id": r.gateway_id,
        "seq": r.seq,
        "sensor_id": r.sensor_id,
        "quantity": r.quantity,
        "value": r.value,
        "unit": r.unit,
        "quality": r.quality,
        "taken_at": _time(r.taken_at),
        "received_at": _time(r.received_at),
        "reason": r.reason,
    }


@bp.get("/quarantined-readings")
@endpoint("dead_letters", query=Filter)
def list_quarantined() -> Any:
    """Stored readings the rules could not evaluate (decision 0022), newest first, with the
    reason; by gateway, sensor and arrival time."""
    given, chosen = _chosen()
    return page_of(quarantined_readings(chosen), given, quarantined_json)


@bp.get("/implausible-readings")
@endpoint("dead_letters", query=Filter)
def list_implausible() -> Any:
    """Readings whose time cannot be believed (decision 0021), never evaluated, newest
    received first, with the reason; by gateway, sensor and arrival time."""
    given, chosen = _chosen()
    return page_of(implausible_readings(chosen), given, implausible_json)
