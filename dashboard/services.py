"""The service layer the pages read through, set once when the app is created."""

from __future__ import annotations

from cloud.views.accounts import Accounts
from cloud.views.control_room import ControlRoom

_control_room: ControlRoom | None = None
_accounts: Accounts | None = None


def configure(control_room: ControlRoom, accounts: Accounts | None = None) -> None:
    global _control_room, _accounts
    _control_room, _accounts = control_room, accounts


def control_room() -> ControlRoom:
    if _control_room is None:
        raise RuntimeError("dashboard.services.configure() was not called")
    return _control_room


def accounts() -> Accounts:
    if _accounts is None:
        raise RuntimeError("dashboard.services.configure() was not given the accounts")
    return _accounts
