"""API tokens for machines (scanners, integrations) and for an admin's own scripts: a random
secret shown once, kept hashed, with scopes and an expiry.

An admin issues a token to themselves or to a machine user, never to another person: a token
acts as its user, so one issued to a colleague would let the admin act as them. A token
carries only the scopes it was given (cloud.domain.access.SCOPES) and lives at most
TOKEN_DAYS_MAX days. Revoking it, its expiry, or deactivating its user ends its access. The
secret has 256 bits of entropy, so one SHA-256 (not a slow password hash) makes the stored
value useless to whoever reads the table.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.people import PREFIX, ApiToken, User
from cloud.domain.access import SCOPES, TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX
from cloud.domain.clock import utcnow
from cloud.service_layer.signatures import existing_user


class TokenRefused(Exception):
    """A token that may not be issued: to another person, or by someone not an admin."""


@dataclass(frozen=True, slots=True)
class Bearer:
    """Who a live token acts as, the token, and who issued it."""

    user: User
    token: ApiToken
    issuer: str

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.token.scopes.split())

    @property
    def actor(self) -> str:
        """How the audit trail names what is done with the token."""
        return f"{self.user.username} via token {self.token.id} (issued by {self.issuer})"


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _scopes(scopes: Iterable[str]) -> str:
    given = sorted(set(scopes))
    unknown = [s for s in given if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)}; scopes are {', '.join(SCOPES)}")
    if not given:
        raise ValueError(f"a token needs at least one scope of {', '.join(SCOPES)}")
    return " ".join(given)


def issue_token(
    session: Session,
    username: str,
    name: str,
    *,
    issuer: User,
    scopes: Iterable[str],
    days: int = TOKEN_DAYS_DEFAULT,
) -> tuple[ApiToken, str]:
    """A new token for the user (audited: the session needs an actor), issued by an admin to
    themselves or to a machine user; the secret is returned here and never again."""
    user = existing_user(session, username)
    if issuer.role != "admin" or issuer.pending_role is not None or issuer.kind != "person":
        raise TokenRefused(f"{issuer.username} is not a confirmed admin: only admins issue tokens")
    if user.kind != "machine" and user.id != issuer.id:
        raise TokenRefused(
            f"{username} is a person: tokens go to machine users or to the admin "
            "who issues them, never to act as someone else"
        )
    if not user.active:
        raise ValueError(f"user {username!r} is inactive")
    if not name.strip():
        raise ValueError("a token needs a name that says what uses it")
    if not 1 <= days <= TOKEN_DAYS_MAX:
        raise ValueError(f"a token lives 1 to {TOKEN_DAYS_MAX} days, not {days}")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=token_hash(secret),
        hint=secret[:10],
        scopes=_scopes(scopes),
        expires_at=utcnow() + timedelta(days=days),
        issued_by=issuer.id,
    )
    session.add(token)
    session.flush()
    return token, secret


def bearer_of(session: Session, secret: str, now: datetime | None = None) -> Bearer | None:
    """Who a live token (not revoked, not expired, its user active) acts as, or None."""
    now = now or utcnow()
    row = session.execute(
        select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_hash(secret), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    user, token = row
    if not user.active or token.expires_at <= now or token.issued_by is None:
        return None
    if user.kind != "machine" and token.issued_by != user.id:
        return None  # a person's token someone else issued (before tokens were restricted)
    issuer = session.get(User, token.issued_by)
    return Bearer(user, token, issuer.username if issuer is not None else "unknown")


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Revoke a token (an audited update: the session needs a reason)."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise LookupError(f"token {token_id} does not exist")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token
