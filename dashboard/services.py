"""The service layer the pages read through, set once when the app is created."""

from __future__ import annotations

from cloud.domain.holds import TWO_PERSON_REASONS
from cloud.views.control_room import ControlRoom

_control_room: ControlRoom | None = None
_two_person_reasons: frozenset[str] = TWO_PERSON_REASONS


def configure(
    control_room: ControlRoom, two_person_reasons: frozenset[str] = TWO_PERSON_REASONS
) -> None:
    global _control_room, _two_person_reasons
    _control_room = control_room
    _two_person_reasons = two_person_reasons


def two_person_reasons() -> frozenset[str]:
    """The hold reasons whose release takes two QA (COLDCHAIN_TWO_PERSON_REASONS)."""
    return _two_person_reasons


def control_room() -> ControlRoom:
    if _control_room is None:
        raise RuntimeError("dashboard.services.configure() was not called")
    return _control_room
