"""Users and API tokens as the API lists them, and the usernames shown for user ids."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.accounts import AccountLock
from cloud.adapters.orm.people import ApiToken, User


def users() -> Select[User]:
    """Users by username."""
    return select(User).order_by(User.username)


def tokens() -> Select[ApiToken]:
    """API tokens in the order they were issued."""
    return select(ApiToken).order_by(ApiToken.id)


def usernames(session: Session) -> dict[int, str]:
    """Every user's username by id."""
    return {uid: name for uid, name in session.execute(select(User.id, User.username))}


def locked_user_ids(session: Session) -> set[int]:
    """The ids of the users whose accounts are locked."""
    query = select(AccountLock.user_id).where(AccountLock.unlocked_at.is_(None))
    return set(session.scalars(query))
