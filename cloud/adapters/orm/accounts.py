"""What keeps accounts safe: login sessions kept on the server, wrong passwords and lock-outs.

A login session's cookie holds only a random secret; the table keeps its SHA-256, so whoever
reads the table cannot take over a session. Wrong passwords and lock-outs are rows, so every
process (API workers, control room) counts the same failures.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.adapters.orm.audit import audited
from cloud.adapters.orm.base import Base, one_of

APPS = ("api", "control_room")  # each has its own cookie: one cannot be replayed on the other
PASSWORD_USES = ("login", "signature", "password_change")


class LoginSession(Base):
    """A logged-in user of the API or the control room, until logout, expiry or revocation."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    app: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # Set by the first signature: later ones in this continuous session need the password only.
    signed_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (one_of("app", APPS, "login_sessions_app"),)


class PasswordFailure(Base):
    """A wrong password given for an account: at login, at signing or to change it."""

    __tablename__ = "password_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    failed_at: Mapped[datetime]
    used_for: Mapped[str] = mapped_column(String(16))
    client: Mapped[str | None] = mapped_column(String(64))  # the caller's address, if known

    __table_args__ = (
        one_of("used_for", PASSWORD_USES, "password_failures_used_for"),
        Index("password_failures_user_time", "user_id", "failed_at"),
    )


class AccountLock(Base):
    """An account locked after too many wrong passwords, until an admin unlocks it."""

    __tablename__ = "account_locks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    locked_at: Mapped[datetime]
    failures: Mapped[int]
    unlocked_at: Mapped[datetime | None]
    unlocked_by: Mapped[str | None] = mapped_column(String(64))
    unlock_reason: Mapped[str | None] = mapped_column(Text)


audited(AccountLock)
