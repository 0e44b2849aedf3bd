"""Monitoring profiles in the database: stored profiles, zone assignments, presets by kind
with the zone's own limits (decision 0024), and the renewal of a zone's set-up in the
ingest workers that keep it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import (
    CumulativeRule,
    MonitoringLevel,
    MonitoringProfile,
    ZoneProfile,
    ZoneRuleState,
)
from cloud.adapters.orm.readings import Zone
from cloud.domain.monitoring import (
    PRESETS,
    Cumulative,
    Limit,
    Profile,
    presets_for_kind,
    with_zone_limits,
)


def save_profile(session: Session, profile: Profile) -> MonitoringProfile:
    """Store a validated profile (a new name; levels and rules as rows)."""
    if session.get(MonitoringProfile, profile.name) is not None:
        raise ValueError(f"monitoring profile {profile.name!r} exists already")
    row = MonitoringProfile(
        id=profile.name,
        description=profile.description,
        quantity=profile.quantity,
        max_gap_min=profile.max_gap_min,
        gap_alarm_min=profile.gap_alarm_min,
        freeze_limit=profile.freeze_limit,
    )
    session.add(row)
    session.flush()  # the levels refer to it
    for lim in profile.limits:
        session.add(
            MonitoringLevel(
                profile_id=profile.name,
                level=lim.level,
                kind=lim.kind,
                limit=lim.limit,
                delay_min=lim.delay_min,
                deadband=lim.deadband,
            )
        )
    for c in profile.cumulative:
        session.add(
            CumulativeRule(
                profile_id=profile.name,
                level=c.level,
                direction=c.direction,
                limit=c.limit,
                allowed_min=c.allowed_min,
                window_min=c.window_min,
            )
        )
    session.flush()
    return row


def assign_profiles(session: Session, zone_id: str, names: Iterable[str]) -> None:
    """Monitor a zone with these profiles (stored ones or presets) instead of its kind's."""
    if session.get(Zone, zone_id) is None:
        raise ValueError(f"zone {zone_id!r} does not exist")
    for name in names:
        if session.get(MonitoringProfile, name) is None:
            if name not in PRESETS:
                raise ValueError(f"monitoring profile {name!r} is neither stored nor a preset")
            save_profile(session, PRESETS[name])
        if session.get(ZoneProfile, (zone_id, name)) is None:
            session.add(ZoneProfile(zone_id=zone_id, profile_id=name))
    session.flush()


def assignments(zone_id: str) -> Any:
    """The query of a zone's assigned profiles."""
    return select(ZoneProfile).where(ZoneProfile.zone_id == zone_id)


def set_profiles(session: Session, zone_id: str, names: Iterable[str]) -> None:
    """Monitor a zone with exactly these profiles (none: its kind's presets again). Each
    assignment added or removed is an audited change."""
    wanted = set(names)
    for row in session.scalars(assignments(zone_id)):
        if row.profile_id not in wanted:
            session.delete(row)
    assign_profiles(session, zone_id, sorted(wanted))
    renew_set_up(session, zone_id)


def renew_set_up(session: Session, zone_id: str) -> None:
    """Make every ingest worker read the zone's set-up afresh with its next readings: call
    in the transaction that changes the zone's limits or assignments.

    Bumping the version of the zone's detector states makes a worker's next write of a
    state it kept fail (`StaleStates`); it then reads the states and the zones' profiles
    again and evaluates once more. A worker that kept none of them reads the profiles within
    the set-up's lifetime (`RulesConfig.ttl_s`)."""
    session.execute(
        update(ZoneRuleState)
        .where(ZoneRuleState.zone_id == zone_id)
        .values(version=ZoneRuleState.version + 1)
        .execution_options(synchronize_session=False)
    )


def stored_profiles(session: Session, names: set[str] | None = None) -> dict[str, Profile]:
    """Stored profiles by name (all, or those of `names` that are stored)."""
    if names is None:
        names = set(session.scalars(select(MonitoringProfile.id)))
    return _load(session, names) if names else {}


def custom_temperature_profiles(session: Session, zone_id: str) -> list[str]:
    """The assigned temperature profiles of a zone that are not presets: the zone's own
    limits do not change them."""
    names = {row.profile_id for row in session.scalars(assignments(zone_id))} - set(PRESETS)
    return sorted(
        n for n, p in stored_profiles(session, names).items() if p.quantity == "temperature"
    )


def _load(session: Session, names: set[str]) -> dict[str, Profile]:
    rows = {
        p.id: p
        for p in session.scalars(select(MonitoringProfile).where(MonitoringProfile.id.in_(names)))
    }
    levels = session.scalars(select(MonitoringLevel).where(MonitoringLevel.profile_id.in_(names)))
    rules = session.scalars(select(CumulativeRule).where(CumulativeRule.profile_id.in_(names)))
    limits: dict[str, list[Limit]] = {}
    for lv in sorted(levels, key=lambda r: r.id):
        limits.setdefault(lv.profile_id, []).append(
            Limit(
                level=lv.level,
                kind=lv.kind,
                limit=lv.limit,
                delay_min=lv.delay_min,
                deadband=lv.deadband,
            )
        )
    cumulative: dict[str, list[Cumulative]] = {}
    for r in sorted(rules, key=lambda r: r.id):
        cumulative.setdefault(r.profile_id, []).append(
            Cumulative(
                level=r.level,
                direction=r.direction,
                limit=r.limit,
                allowed_min=r.allowed_min,
                window_min=r.window_min,
            )
        )
    return {
        name: Profile(
            name=name,
            quantity=row.quantity,
            description=row.description,
            limits=tuple(limits.get(name, ())),
            cumulative=tuple(cumulative.get(name, ())),
            max_gap_min=row.max_gap_min,
            gap_alarm_min=row.gap_alarm_min,
            freeze_limit=row.freeze_limit,
        )
        for name, row in rows.items()
    }


def zone_profiles(session: Session, zone_ids: Iterable[str]) -> dict[str, tuple[Profile, ...]]:
    """The profiles each zone is monitored with: its assignments, else its kind's presets;
    a preset with the zone's own limits in place of its range, when the zone has them."""
    ids = set(zone_ids)
    if not ids:
        return {}
    zones = {
        z: (kind, low, high)
        for z, kind, low, high in session.execute(
            select(Zone.id, Zone.kind, Zone.low, Zone.high).where(Zone.id.in_(ids))
        )
    }
    assigned: dict[str, list[str]] = {}
    for zone_id, name in session.execute(
        select(ZoneProfile.zone_id, ZoneProfile.profile_id).where(ZoneProfile.zone_id.in_(ids))
    ):
        assigned.setdefault(zone_id, []).append(name)
    stored = _load(session, {n for names in assigned.values() for n in names})
    result = {}
    for zone_id in ids:
        kind, low, high = zones.get(zone_id, ("cold_room", None, None))
        if zone_id in assigned:
            found = tuple(stored[n] for n in sorted(assigned[zone_id]) if n in stored)
        else:
            found = presets_for_kind(kind)
        result[zone_id] = tuple(
            with_zone_limits(p, low, high) if p.name in PRESETS else p for p in found
        )
    return result
