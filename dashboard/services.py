"""The service layer the pages read through, set once when the app is created."""

from __future__ import annotations

from cloud.domain.holds import TWO_PERSON_REASONS
from cloud.views.accounts import Accounts
from cloud.views.control_room import ControlRoom

_control_room: ControlRoom | None = None
_accounts: Accounts | None = None
_two_person_reasons: frozenset[str] = TWO_PERSON_REASONS


def configure(
    control_room: ControlRoom,
    accounts: Accounts | None = None,
    two_person_reasons: frozenset[str] = TWO_PERSON_REASONS,
) -> None:
    global _control_room, _accounts, _two_person_reasons
    _control_room, _accounts = control_room, accounts
    _two_person_reasons = two_person_reasons


def two_person_reasons() -> frozenset[str]:
    """The hold reasons whose release takes two QA (COLDCHAIN_TWO_PERSON_REASONS)."""
    return _two_person_reasons


def control_room() -> ControlRoom:
    if _control_room is None:
        raise RuntimeError("dashboard.services.configure() was not called")
    return _control_room


def accounts() -> Accounts:
    if _accounts is None:
        raise RuntimeError("dashboard.services.configure() was not given the accounts")
    return _accounts
