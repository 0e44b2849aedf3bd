"""The control room's accounts: logging in and out of server-side login sessions, changing
one's password, and the admin's list of accounts with their locks, unlock and reset."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.adapters.orm.people import User
from cloud.adapters.throttle import PER_ACCOUNT, PER_CLIENT, Throttle
from cloud.service_layer import accounts
from cloud.service_layer.login_sessions import (
    Timeouts,
    end_session,
    live_session,
    signed_before,
)
from cloud.service_layer.passwords import WeakPassword
from cloud.views.control_room import UserView
from cloud.views.people import locked_user_ids

log = logging.getLogger(__name__)
APP = "control_room"


@dataclass(frozen=True)
class AccountView:
    username: str
    full_name: str
    role: str
    active: bool
    locked: bool
    must_change_password: bool


class Accounts:
    """Login sessions of the control room (its own cookie) and the accounts admins manage."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        timeouts: Timeouts,
        login_limits: tuple[str, str] = (PER_CLIENT, PER_ACCOUNT),
    ):
        self.sessions = sessions
        self.timeouts = timeouts
        self.throttle = Throttle(*login_limits)

    def log_in(
        self, username: str, password: str, client: str | None
    ) -> tuple[UserView, str] | None:
        """The user and the new session's secret, or None (a wrong password is counted)."""
        with self.sessions() as session:
            try:
                done = accounts.log_in(session, username, password, APP, client)
            except accounts.LoginRefused:
                session.commit()
                return None
            session.commit()
            return _view(done.user, done.login_session.id), done.secret

    def session_user(self, secret: str, active: bool) -> UserView | None:
        """The user of the live session with this secret, else None (`active`: the user's
        own action, which restarts the idle timeout; a page's auto-refresh is not one)."""
        with self.sessions() as session:
            row = live_session(session, secret, APP, self.timeouts, active=active)
            user = session.get(User, row.user_id) if row is not None else None
            session.commit()
            if row is None or user is None or not user.active:
                return None
            return _view(user, row.id)

    def log_out(self, secret: str) -> None:
        with self.sessions() as session:
            row = live_session(session, secret, APP, self.timeouts, active=False)
            if row is not None:
                end_session(session, row, "logout")
            session.commit()

    def needs_user_id(self, user: UserView) -> bool:
        """True if the user's next signature is the first of the session (user ID needed)."""
        with self.sessions() as session:
            return not signed_before(session, user.session_id, user.id)

    def change_password(self, user: UserView, old: str, new: str) -> str | None:
        """Change the user's own password; None, or why it was refused."""
        with self.sessions() as session:
            session.info["actor"] = user.username
            row = session.get(User, user.id)
            if row is None:
                return "the account no longer exists"
            try:
                accounts.change_password(session, row, old, new, keep_session=user.session_id)
            except WeakPassword as exc:
                return str(exc)
            except accounts.PasswordChangeRefused as exc:
                session.commit()  # the wrong password counts towards the lock-out
                return str(exc)
            session.commit()
            return None

    def accounts(self) -> list[AccountView]:
        """Every account by username, with whether it is locked."""
        with self.sessions() as session:
            locked = locked_user_ids(session)
            users = session.scalars(select(User).order_by(User.username))
            return [
                AccountView(
                    u.username,
                    u.full_name,
                    u.role,
                    u.active,
                    u.id in locked,
                    u.must_change_password,
                )
                for u in users
            ]

    def unlock(self, admin: UserView, username: str, reason: str) -> None:
        """An admin unlocks the account (LookupError if it is not locked; ValueError: reason)."""
        with self.sessions() as session:
            session.info["actor"] = admin.username
            user = session.scalars(select(User).where(User.username == username)).first()
            if user is None:
                raise LookupError(f"user {username} does not exist")
            accounts.unlock(session, user, reason)
            session.commit()

    def reset(self, admin: UserView, username: str, reason: str) -> str:
        """An admin resets the password; the temporary one to hand to the user."""
        with self.sessions() as session:
            session.info["actor"] = admin.username
            user = session.scalars(select(User).where(User.username == username)).first()
            if user is None:
                raise LookupError(f"user {username} does not exist")
            temporary = accounts.reset_password(session, user, reason)
            session.commit()
            return temporary


def _view(user: User, session_id: int) -> UserView:
    return UserView(
        user.id,
        user.username,
        user.full_name,
        user.role,
        session_id=session_id,
        must_change_password=user.must_change_password,
    )
