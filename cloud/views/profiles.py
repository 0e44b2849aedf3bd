"""Monitoring profiles as the API lists them (the presets and the profiles admins stored),
and a zone's assignment as the control room's zone page shows and changes it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cloud.domain.monitoring import PRESETS, Profile
from cloud.service_layer.rules.profiles import set_profiles, stored_profiles, zone_profiles


def profiles(session: Session) -> list[Profile]:
    """Every profile a zone can be assigned, by name: the presets (as defined, whether or
    not an assignment stored them) and the custom ones."""
    found = {**stored_profiles(session), **PRESETS}
    return [found[name] for name in sorted(found)]


def profile_named(session: Session, name: str) -> Profile | None:
    """One profile by name, a preset or a stored one; None if there is none."""
    if name in PRESETS:
        return PRESETS[name]
    return stored_profiles(session, {name}).get(name)


def zone_choice(session: Session, zone_id: str) -> tuple[list[str], list[str]]:
    """(every profile name a zone can be assigned, the names the zone is judged by now)."""
    judged = zone_profiles(session, {zone_id}).get(zone_id, ())
    return [p.name for p in profiles(session)], [p.name for p in judged]


def assign(session: Session, zone_id: str, names: list[str]) -> list[str]:
    """Judge the zone by exactly these profiles (none: its kind's presets); the caller's
    session carries the actor and the reason. Returns the names it is judged by now."""
    set_profiles(session, zone_id, names)
    return zone_choice(session, zone_id)[1]
