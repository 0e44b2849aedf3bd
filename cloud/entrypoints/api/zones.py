"""Zones: list, read, register, change their limits (audited), what is in a zone now and
was there between two times, the monitoring profiles it is judged by and its suppression
windows (both audited; a new window re-evaluates the zone from its start)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from pydantic import Field, model_validator
from sqlalchemy import inspect

from cloud.adapters.orm.quality import SuppressionWindow
from cloud.adapters.orm.readings import Site, Zone
from cloud.domain.monitoring import Profile
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.lookup import get_or_404
from cloud.entrypoints.api.pagination import Instant, Page, TimeWindow, page_of, window_bounds
from cloud.entrypoints.api.problems import Problem, parse_body, parse_query
from cloud.entrypoints.api.records import Records
from cloud.entrypoints.api.representations import interval_json, item_json
from cloud.service_layer import rules as rules_service
from cloud.service_layer.custody import items_in_zone, zone_window_query
from cloud.service_layer.rules import profiles as rules_profiles
from cloud.views import records
from cloud.views import suppressions as suppressions_view

bp = Blueprint("zones", __name__, url_prefix="/api/zones")


class NewZone(Body):
    id: str = Field(min_length=1, max_length=64)
    site_id: str
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=32, description="cold_room, truck_compartment, ...")
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _range(self) -> NewZone:
        _check_limits(self.low, self.high)
        return self


class ZoneChange(Body):
    """Limits decide what counts as an excursion: changing them needs a reason."""

    name: str | None = Field(None, min_length=1, max_length=200)
    kind: str | None = Field(None, min_length=1, max_length=32)
    low: float | None = None
    high: float | None = None


class ZoneFilter(Page):
    site_id: str | None = None


def _check_limits(low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low >= high:
        raise ValueError(f"low {low} is not below high {high}")


def zone_json(z: Zone) -> dict[str, Any]:
    return {
        "id": z.id,
        "site_id": z.site_id,
        "name": z.name,
        "kind": z.kind,
        "low": z.low,
        "high": z.high,
    }


ZONES = Records(Zone, "zone", zone_json, {"site_id": (Site, "site")})


def _limits_in_order(zone: Zone) -> None:
    try:
        _check_limits(zone.low, zone.high)
    except ValueError as exc:
        raise Problem(422, "validation", "Invalid request", str(exc)) from exc


def _limits_that_count(zone: Zone) -> None:
    """Limits in order, and limits that will count: a zone judged by a custom temperature
    profile keeps that profile's levels, so own limits there are refused, not ignored. The
    running workers read the zone's set-up afresh with their next readings."""
    _limits_in_order(zone)
    db = get_db()
    given = [a for a in ("low", "high") if inspect(zone).attrs[a].history.has_changes()]
    if any(getattr(zone, a) is not None for a in given):
        custom = rules_profiles.custom_temperature_profiles(db, zone.id)
        if custom:
            raise Problem(
                409,
                "conflict",
                "Conflict",
                f"zone {zone.id} is judged by the custom profile {', '.join(custom)}, whose "
                "levels its own limits do not change: assign other profiles "
                f"(PUT /api/zones/{zone.id}/profiles) instead",
            )
    rules_profiles.renew_set_up(db, zone.id)


@bp.get("")
@endpoint("read", query=ZoneFilter)
def list_zones() -> Any:
    """Zones by id; filter by site_id."""
    given = parse_query(ZoneFilter)
    return ZONES.listing(records.zones(given.site_id), given)


@bp.post("")
@endpoint("master-data", body=NewZone, status=201)
def create_zone() -> Any:
    """Register a zone of a site with its temperature limits."""
    return ZONES.create(parse_body(NewZone))


@bp.get("/<zone_id>")
@endpoint("read")
def get_zone(zone_id: str) -> Any:
    """One zone."""
    return ZONES.show(zone_id)


@bp.patch("/<zone_id>")
@endpoint("master-data", body=ZoneChange)
def change_zone(zone_id: str) -> Any:
    """Change a zone's name, kind or limits (an audited update: give a reason). Its own
    limits replace its presets' range from the next readings on (decision 0024)."""
    return ZONES.change(zone_id, parse_body(ZoneChange), _limits_that_count)


class Between(TimeWindow):
    """Both ends required."""

    start: Instant = Field(alias="from")
    end: Instant = Field(alias="to")


@bp.get("/<zone_id>/items")
@endpoint("read", query=Page)
def in_zone_now(zone_id: str) -> Any:
    """The items in the zone now."""
    page = parse_query(Page)
    db = get_db()
    get_or_404(db, Zone, zone_id, f"zone {zone_id}")
    return page_of(items_in_zone(db, zone_id), page, item_json)


@bp.get("/<zone_id>/custody")
@endpoint("read", query=Between)
def in_zone_between(zone_id: str) -> Any:
    """The custody intervals in the zone touching [from, to] (both required, ISO 8601)."""
    window = parse_query(Between)
    start, end = window_bounds(window)
    db = get_db()
    get_or_404(db, Zone, zone_id, f"zone {zone_id}")
    assert start is not None and end is not None
    return page_of(zone_window_query(zone_id, start, end, rows=True), window, interval_json)


def profile_json(p: Profile) -> dict[str, Any]:
    return {
        "name": p.name,
        "description": p.description,
        "quantity": p.quantity,
        "limits": [lim.rule for lim in p.limits],
        "cumulative": [c.rule for c in p.cumulative],
        "max_gap_min": p.max_gap_min,
        "gap_alarm_min": p.gap_alarm_min,
        "freeze_limit": p.freeze_limit,
    }


class ProfileChoice(Body):
    """The profiles (stored or presets, by name) a zone is judged by; none: its kind's
    presets. A change of what counts as an excursion needs a reason."""

    profiles: list[str] = Field(max_length=20)
    reason: str = Field(min_length=1)


@bp.get("/<zone_id>/profiles")
@endpoint("read")
def zone_profiles(zone_id: str) -> Any:
    """The monitoring profiles the zone is judged by now (presets with the zone's own limits
    in place of their range), whether they were assigned, and the zone's own limits."""
    db = get_db()
    zone = get_or_404(db, Zone, zone_id, f"zone {zone_id}")
    assigned = bool(db.scalars(rules_profiles.assignments(zone_id)).first())
    profiles = rules_profiles.zone_profiles(db, {zone_id})[zone_id]
    own = None if zone.low is None and zone.high is None else {"low": zone.low, "high": zone.high}
    return jsonify(
        {
            "zone_id": zone_id,
            "assigned": assigned,
            "own_limits": own,
            "profiles": [profile_json(p) for p in profiles],
        }
    )


@bp.put("/<zone_id>/profiles")
@endpoint("profiles", body=ProfileChoice)
def choose_profiles(zone_id: str) -> Any:
    """Judge the zone by these profiles from now on (running workers within seconds)."""
    given = parse_body(ProfileChoice)
    db = get_db()
    get_or_404(db, Zone, zone_id, f"zone {zone_id}")
    try:
        rules_profiles.set_profiles(db, zone_id, given.profiles)
    except ValueError as exc:
        raise Problem(422, "validation", "Invalid request", str(exc)) from exc
    db.commit()
    return zone_profiles(zone_id)


def window_json(w: SuppressionWindow) -> dict[str, Any]:
    return {
        "id": w.id,
        "zone_id": w.zone_id,
        "from": w.started_at.isoformat(),
        "to": w.ended_at.isoformat(),
        "reason": w.reason,
        "grace_min": w.grace_min,
    }


class NewWindow(Body):
    """A planned disturbance: runs that start inside it get `grace_min` more before they
    count; what it absorbs is recorded with the reason."""

    start: Instant = Field(alias="from")
    end: Instant = Field(alias="to")
    reason: str = Field(min_length=1, max_length=200)
    grace_min: float = Field(gt=0, le=24 * 60)


@bp.get("/<zone_id>/suppressions")
@endpoint("read", query=Page)
def suppressions(zone_id: str) -> Any:
    """The zone's suppression windows, newest first."""
    page = parse_query(Page)
    db = get_db()
    get_or_404(db, Zone, zone_id, f"zone {zone_id}")
    return page_of(suppressions_view.windows(zone_id), page, window_json)


@bp.post("/<zone_id>/suppressions")
@endpoint("suppress", body=NewWindow, status=201)
def add_suppression(zone_id: str) -> Any:
    """Add a suppression window; the zone is re-evaluated from its start, and the
    excursions that changed (absorbed, re-timed) are returned with it."""
    given = parse_body(NewWindow)
    db = get_db()
    get_or_404(db, Zone, zone_id, f"zone {zone_id}")
    try:
        outcome = rules_service.add_suppression(
            db, zone_id, given.start, given.end, given.reason, given.grace_min
        )
    except ValueError as exc:
        raise Problem(422, "validation", "Invalid request", str(exc)) from exc
    window = suppressions_view.last_added(db, zone_id)
    db.commit()
    assert window is not None
    changed = [*outcome.opened, *outcome.closed, *outcome.changed]
    body = {**window_json(window), "excursions_changed": sorted({e.id for e in changed})}
    return jsonify(body), 201
