"""Login sessions kept on the server: started at login, seen on each request, ended by logout,
a password change, an admin's reset, or the idle and absolute timeouts.

The cookie carries only a random secret; the table keeps its SHA-256. A session is also the
"continuous session" of 21 CFR 11.200(a)(1): its first signature needs the user ID and the
password, later ones the password only, until the session ends (idle timeout included).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.adapters.orm.accounts import LoginSession
from cloud.adapters.orm.people import User
from cloud.domain.clock import utcnow


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """How long a session lives: since the user's last action, and at most since login."""

    idle: timedelta = timedelta(minutes=15)
    absolute: timedelta = timedelta(hours=12)

    @property
    def touch_every(self) -> timedelta:
        """Seen-at is written at most this often, not on every request."""
        return min(timedelta(seconds=30), self.idle / 10)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start_session(
    session: Session, user: User, app: str, now: datetime | None = None
) -> tuple[LoginSession, str]:
    """A new session for `user` in `app`; the secret (for the cookie) is returned only here."""
    now = now or utcnow()
    secret = secrets.token_urlsafe(32)
    row = LoginSession(
        secret_hash=secret_hash(secret), user_id=user.id, app=app, started_at=now, last_seen_at=now
    )
    session.add(row)
    session.flush()
    return row, secret


def expiry_of(row: LoginSession, timeouts: Timeouts, now: datetime) -> str | None:
    """Why the session is over at `now` ("idle timeout", "absolute timeout"), or None."""
    if now - row.started_at >= timeouts.absolute:
        return "absolute timeout"
    if now - row.last_seen_at >= timeouts.idle:
        return "idle timeout"
    return None


def live_session(
    session: Session,
    secret: str,
    app: str,
    timeouts: Timeouts,
    *,
    active: bool = True,
    now: datetime | None = None,
) -> LoginSession | None:
    """The live session with this secret in `app`, else None (an expired one is ended).

    `active`: the request is the user's own doing, so the idle timeout starts again; a page's
    periodic refresh is not, and does not keep a session alive.
    """
    now = now or utcnow()
    row = session.scalars(
        select(LoginSession).where(
            LoginSession.secret_hash == secret_hash(secret), LoginSession.app == app
        )
    ).first()
    if row is None or row.ended_at is not None:
        return None
    reason = expiry_of(row, timeouts, now)
    if reason is not None:
        end_session(session, row, reason, now)
        return None
    if active and now - row.last_seen_at >= timeouts.touch_every:
        row.last_seen_at = now
        session.flush()
    return row


def end_session(
    session: Session, row: LoginSession, reason: str, now: datetime | None = None
) -> None:
    if row.ended_at is None:
        row.ended_at, row.end_reason = now or utcnow(), reason
        session.flush()


def end_sessions_of(session: Session, user_id: int, reason: str, keep: int | None = None) -> int:
    """End every live session of the user (but `keep`); the number ended."""
    query = update(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.ended_at.is_(None)
    )
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    result = session.execute(
        query.values(ended_at=utcnow(), end_reason=reason),
        execution_options={"synchronize_session": "fetch"},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def signed_before(session: Session, session_id: int | None, user_id: int) -> bool:
    """True if the live session `session_id` of this user holds a signature already."""
    if session_id is None:
        return False
    row = session.get(LoginSession, session_id)
    return (
        row is not None
        and row.user_id == user_id
        and row.ended_at is None
        and row.signed_at is not None
    )


def note_signature(session: Session, session_id: int | None, now: datetime) -> None:
    """Record that the session has signed: its next signatures need the password only."""
    if session_id is None:
        return
    row = session.get(LoginSession, session_id)
    if row is not None and row.signed_at is None:
        row.signed_at = now
