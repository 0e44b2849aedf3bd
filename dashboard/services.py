"""The service layer the pages read through, set once when the app is created."""

from __future__ import annotations

from cloud.views.control_room import ControlRoom

_control_room: ControlRoom | None = None


def configure(control_room: ControlRoom) -> None:
    global _control_room
    _control_room = control_room


def control_room() -> ControlRoom:
    if _control_room is None:
        raise RuntimeError("dashboard.services.configure() was not called")
    return _control_room
