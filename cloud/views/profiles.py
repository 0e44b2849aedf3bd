"""Monitoring profiles as the API lists them: the presets and the profiles admins stored."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cloud.domain.monitoring import PRESETS, Profile
from cloud.service_layer.rules.profiles import stored_profiles


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
