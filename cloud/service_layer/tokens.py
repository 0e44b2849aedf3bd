"""API tokens for machines (scanners, integrations): a random secret shown once, kept hashed.

A token acts as the user it was issued to, with that user's role; revoking it, or
deactivating the user, ends its access. The secret has 256 bits of entropy, so one SHA-256
(not a slow password hash) makes the stored value useless to whoever reads the table.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.people import PREFIX, ApiToken, User
from cloud.domain.clock import utcnow
from cloud.service_layer.signatures import existing_user


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(session: Session, username: str, name: str) -> tuple[ApiToken, str]:
    """A new token for the user (audited: the session needs an actor); the secret is returned
    here and never again."""
    user = existing_user(session, username)
    if not user.active:
        raise ValueError(f"user {username!r} is inactive")
    if not name.strip():
        raise ValueError("a token needs a name that says what uses it")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=token_hash(secret), hint=secret[:10])
    session.add(token)
    session.flush()
    return token, secret


def user_of_token(session: Session, secret: str) -> User | None:
    """The active user a live token acts as, or None."""
    query = (
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_hash(secret), ApiToken.revoked_at.is_(None))
    )
    user = session.scalars(query).first()
    return user if user is not None and user.active else None


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Revoke a token (an audited update: the session needs a reason)."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise LookupError(f"token {token_id} does not exist")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token
