"""Accounts as admins manage them: people and machine users, roles given by one admin and
confirmed by a second, and the rule that nobody changes their own role or activation.

A role an admin gives (at creation or by a change) waits in `pending_role`; until a second
admin confirms it the user acts as a viewer (cloud.domain.access.effective_role), so neither
a promotion nor a demotion lets anyone act in a role two admins have not agreed on.
"""

from __future__ import annotations

import logging
import secrets

from sqlalchemy.orm import Session

from cloud.adapters.orm.people import User
from cloud.domain.access import KINDS, MACHINE_ROLES, PENDING_ROLE, ROLES
from cloud.service_layer.audit import audit_reason
from cloud.service_layer.signatures import create_user, existing_user

log = logging.getLogger(__name__)


class AccountRefused(Exception):
    """A change to an account that the rules forbid (own account, same admin confirming)."""


class AccountConflict(Exception):
    """A change that does not fit the account's state (nothing pending to confirm)."""


def _needs_reason(reason: str | None, what: str) -> str:
    if reason is None or not reason.strip():
        raise ValueError(f"{what} needs a reason (it lands in the audit trail)")
    return reason.strip()


def add_account(
    session: Session,
    admin: User,
    username: str,
    full_name: str,
    role: str,
    password: str | None,
    kind: str = "person",
) -> User:
    """A new user; any role above viewer waits for a second admin's confirmation."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if kind == "machine":
        if role not in MACHINE_ROLES:
            raise ValueError(f"a machine user cannot hold the role {role}: it never signs")
        if password:
            raise ValueError("a machine user has no password: it acts only through tokens")
        password = secrets.token_urlsafe(32)  # never told to anyone; a machine cannot log in
    elif not password:
        raise ValueError("a person needs a password")
    pending = (role, admin.id) if role != PENDING_ROLE else None
    user = create_user(
        session, username, full_name, PENDING_ROLE, password, kind=kind, pending=pending
    )
    log.info("%s added %s %s (role %s pending)", admin.username, kind, username, role)
    return user


def change_role(
    session: Session, admin: User, username: str, role: str, reason: str | None
) -> User:
    """Give the user a new role, pending a second admin's confirmation (audited)."""
    user = existing_user(session, username)
    if user.id == admin.id:
        raise AccountRefused(f"{admin.username} cannot change their own role")
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if user.kind == "machine" and role not in MACHINE_ROLES:
        raise ValueError(f"a machine user cannot hold the role {role}: it never signs")
    why = _needs_reason(reason, "a role change")
    if role == user.role and user.pending_role is None:
        return user
    with audit_reason(session, why):
        user.pending_role, user.role_changed_by = role, admin.id
        session.flush()
    log.info(
        "%s changed the role of %s to %s, pending confirmation", admin.username, username, role
    )
    return user


def confirm_role(session: Session, admin: User, username: str, reason: str | None) -> User:
    """A second admin confirms the pending role: from now on the user acts in it (audited)."""
    user = existing_user(session, username)
    if user.pending_role is None:
        raise AccountConflict(f"user {username} has no role change waiting for confirmation")
    if user.id == admin.id:
        raise AccountRefused(f"{admin.username} cannot confirm a change to their own role")
    if user.role_changed_by == admin.id:
        raise AccountRefused(
            f"{admin.username} made the change to {user.pending_role}: "
            "a second admin must confirm it"
        )
    why = _needs_reason(reason, "a role confirmation")
    with audit_reason(session, why):
        user.role, user.pending_role, user.role_changed_by = user.pending_role, None, None
        session.flush()
    log.info("%s confirmed the role %s of %s", admin.username, user.role, username)
    return user


def change_account(
    session: Session, admin: User, username: str, active: bool | None, full_name: str | None
) -> User:
    """Activate, deactivate or rename a user (audited: the session needs a reason)."""
    user = existing_user(session, username)
    if active is not None and user.id == admin.id and active != user.active:
        raise AccountRefused(f"{admin.username} cannot change whether their own account is active")
    if active is not None:
        user.active = active
    if full_name is not None:
        user.full_name = full_name
    session.flush()
    return user
