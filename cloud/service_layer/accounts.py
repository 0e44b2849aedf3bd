"""Accounts: login, wrong passwords and lock-out, unlock, password change and admin reset.

Five wrong passwords for one account within 15 minutes, at login, at signing or when changing
the password, lock it until an admin unlocks it with a reason; the lock raises an alert. An
unknown username costs the same hashing time as a known one, so timing does not tell which
usernames exist.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.accounts import AccountLock, LoginSession, PasswordFailure
from cloud.adapters.orm.people import User
from cloud.domain.clock import utcnow
from cloud.service_layer.alerts import raise_alert
from cloud.service_layer.audit import audit_reason
from cloud.service_layer.login_sessions import end_sessions_of, start_session
from cloud.service_layer.passwords import (
    WeakPassword,
    check_policy,
    hash_password,
    needs_rehash,
    spend_verification_time,
    verify_password,
)

log = logging.getLogger(__name__)

LOCK_AFTER = 5
FAILURE_WINDOW = timedelta(minutes=15)
GUARD = "account-guard"  # the audit trail's actor for a lock nobody in particular set


class LoginRefused(Exception):
    """A login that did not succeed; the message is the same whatever the cause."""


class PasswordChangeRefused(ValueError):
    """A password change that was refused: wrong old password, or a weak new one."""


@dataclass(frozen=True)
class Login:
    user: User
    login_session: LoginSession
    secret: str


@contextmanager
def _actor(session: Session, actor: str) -> Iterator[None]:
    previous = session.info.get("actor")
    session.info["actor"] = previous or actor
    try:
        yield
    finally:
        if previous is None:
            session.info.pop("actor", None)


def open_lock(session: Session, user_id: int) -> AccountLock | None:
    """The lock on the account, if it is locked."""
    return session.scalars(
        select(AccountLock).where(AccountLock.user_id == user_id, AccountLock.unlocked_at.is_(None))
    ).first()


def is_locked(session: Session, user_id: int) -> bool:
    return open_lock(session, user_id) is not None


def note_wrong_password(
    session: Session,
    user: User,
    used_for: str,
    client: str | None = None,
    now: datetime | None = None,
) -> AccountLock | None:
    """Count a wrong password; the lock if this one locked the account (the caller commits)."""
    now = now or utcnow()
    session.add(PasswordFailure(user_id=user.id, failed_at=now, used_for=used_for, client=client))
    session.flush()
    log.warning("wrong password for %r (%s) from %s", user.username, used_for, client or "?")
    if is_locked(session, user.id):
        return None
    since = now - FAILURE_WINDOW
    failures = session.scalar(
        select(func.count(PasswordFailure.id)).where(
            PasswordFailure.user_id == user.id, PasswordFailure.failed_at > since
        )
    )
    if (failures or 0) < LOCK_AFTER:
        return None
    lock = AccountLock(user_id=user.id, locked_at=now, failures=failures or 0)
    with _actor(session, GUARD):
        session.add(lock)
        session.flush()
        _alert_lock(session, user, lock, used_for, now)
    log.error("account %r locked after %s wrong passwords", user.username, failures)
    return lock


def _alert_lock(
    session: Session, user: User, lock: AccountLock, used_for: str, now: datetime
) -> None:
    raise_alert(
        session,
        kind="account_locked",
        severity="warning",
        title=(
            f"Account {user.username} locked after {lock.failures} wrong passwords within "
            f"{FAILURE_WINDOW.seconds // 60} min (last one at {used_for}): an admin must "
            f"unlock it with a reason"
        ),
        subject_kind="user",
        subject_id=f"{user.username} lock {lock.id}"[-64:],
        now=now,
        fresh=True,
    )


def forget_failures(session: Session, user_id: int) -> None:
    """A right password: the wrong ones before it no longer count."""
    session.execute(delete(PasswordFailure).where(PasswordFailure.user_id == user_id))


def _rehash_if_needed(session: Session, user: User, password: str) -> None:
    if needs_rehash(user.password_hash):
        reason = "password hash upgraded to argon2id at login"
        with _actor(session, user.username), audit_reason(session, reason):
            user.password_hash, user.password_salt = hash_password(password), ""
            session.flush()
        log.info("password hash of %r upgraded to argon2id", user.username)


def check_password_of(
    session: Session, user: User, password: str, used_for: str, client: str | None = None
) -> bool:
    """Verify the user's password; a wrong one counts towards the lock-out, a right one
    clears the count and upgrades an old hash. A locked account's password is never right."""
    right = verify_password(user.password_hash, user.password_salt, password)
    if is_locked(session, user.id):
        return False
    if not right:
        note_wrong_password(session, user, used_for, client)
        return False
    note_right_password(session, user, password)
    return True


def note_right_password(session: Session, user: User, password: str) -> None:
    """A right password: earlier wrong ones no longer count, and an old hash is upgraded."""
    forget_failures(session, user.id)
    _rehash_if_needed(session, user, password)


def log_in(
    session: Session, username: str, password: str, app: str, client: str | None = None
) -> Login:
    """Check the username and password and start a session (the caller commits either way:
    a wrong password is counted). LoginRefused says nothing of which part was wrong."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        spend_verification_time(password)  # as long as a known user's check takes
        log.info("login refused for unknown user %r from %s", username, client or "?")
        raise LoginRefused("wrong username or password, or the account is locked or inactive")
    right = check_password_of(session, user, password, "login", client)
    if not right or not user.active or user.kind != "person":  # machines: tokens only
        log.info("login refused for %r from %s", username, client or "?")
        raise LoginRefused("wrong username or password, or the account is locked or inactive")
    row, secret = start_session(session, user, app)
    log.info("%r logged in to the %s from %s", username, app, client or "?")
    return Login(user, row, secret)


def change_password(
    session: Session,
    user: User,
    old: str,
    new: str,
    keep_session: int | None = None,
    client: str | None = None,
) -> None:
    """The user changes their own password, giving the old one; their other sessions end."""
    if not check_password_of(session, user, old, "password_change", client):
        raise PasswordChangeRefused("the current password is wrong (or the account is locked)")
    if new == old:
        raise WeakPassword("the new password must differ from the current one")
    check_policy(new, user.username)
    with audit_reason(session, "password changed by its user"):
        _set(user, new, must_change=False)
        session.flush()
    end_sessions_of(session, user.id, "password changed", keep=keep_session)
    log.info("%r changed their password", user.username)


def reset_password(session: Session, user: User, reason: str) -> str:
    """An admin resets the user's password: a temporary one, returned here only, that must
    be changed at the next login; every session of the user ends."""
    if not reason.strip():
        raise ValueError("a password reset needs a reason")
    temporary = "-".join(secrets.token_urlsafe(6) for _ in range(3))
    with audit_reason(session, reason):
        _set(user, temporary, must_change=True)
        session.flush()
    end_sessions_of(session, user.id, "password reset by an admin")
    log.info("password of %r reset by %s", user.username, session.info.get("actor"))
    return temporary


def _set(user: User, password: str, must_change: bool) -> None:
    user.password_hash, user.password_salt = hash_password(password), ""
    user.must_change_password = must_change
    user.password_changed_at = utcnow()


def unlock(session: Session, user: User, reason: str) -> AccountLock:
    """An admin unlocks the account with a reason (audited); its wrong passwords are forgotten."""
    if not reason.strip():
        raise ValueError("unlocking an account needs a reason")
    lock = open_lock(session, user.id)
    if lock is None:
        raise LookupError(f"the account {user.username} is not locked")
    with audit_reason(session, reason):
        lock.unlocked_at = utcnow()
        lock.unlocked_by = session.info.get("actor")
        lock.unlock_reason = reason
        session.flush()
    forget_failures(session, user.id)
    log.info("account %r unlocked by %s: %s", user.username, lock.unlocked_by, reason)
    return lock
