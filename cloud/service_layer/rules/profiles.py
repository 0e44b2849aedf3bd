"""Monitoring profiles in the database: stored profiles, zone assignments, presets by kind."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import (
    CumulativeRule,
    MonitoringLevel,
    MonitoringProfile,
    ZoneProfile,
)
from cloud.adapters.orm.readings import Zone
from cloud.domain.monitoring import PRESETS, Cumulative, Limit, Profile, presets_for_kind


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
    """The profiles each zone is monitored with: its assignments, else its kind's presets."""
    ids = set(zone_ids)
    if not ids:
        return {}
    kinds = dict(session.execute(select(Zone.id, Zone.kind).where(Zone.id.in_(ids))).all())
    assigned: dict[str, list[str]] = {}
    for zone_id, name in session.execute(
        select(ZoneProfile.zone_id, ZoneProfile.profile_id).where(ZoneProfile.zone_id.in_(ids))
    ):
        assigned.setdefault(zone_id, []).append(name)
    stored = _load(session, {n for names in assigned.values() for n in names})
    result = {}
    for zone_id in ids:
        if zone_id in assigned:
            result[zone_id] = tuple(stored[n] for n in sorted(assigned[zone_id]) if n in stored)
        else:
            result[zone_id] = presets_for_kind(kinds.get(zone_id, "cold_room"))
    return result
