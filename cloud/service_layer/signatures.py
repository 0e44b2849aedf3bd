"""Users and electronic signatures (21 CFR Part 11 subpart C).

A signature is given by the authenticated actor of the session (the first component, the
username, is known from the session) re-entering the password (the second component). It
binds the printed name, the date and time (UTC), the meaning and a SHA-256 of the signed
record's stored content, and lands in the audit trail like any regulated record.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.audit import canonical_json, json_value, record_key
from cloud.adapters.orm.people import MEANINGS, ROLES, SIGNING_ROLES, Signature, User
from cloud.domain.clock import utcnow
from cloud.service_layer.audit import audit_reason

log = logging.getLogger(__name__)

MIN_PASSWORD = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB and ~50 ms per check


class SignatureRefused(Exception):
    """A signature that was not given: wrong password, inactive user, not the actor, role."""


def hash_password(password: str, salt: str) -> str:
    """scrypt of the password with the user's salt (hex), parameters kept with the digest."""
    digest = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${digest.hex()}"


def set_password(user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    user.password_salt = secrets.token_hex(16)
    user.password_hash = hash_password(password, user.password_salt)


def check_password(user: User, password: str) -> bool:
    """True if `password` is the user's, compared in constant time."""
    _, n, r, p, expected = user.password_hash.split("$")
    digest = hashlib.scrypt(
        password.encode(),
        salt=bytes.fromhex(user.password_salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(expected) // 2,
    )
    return hmac.compare_digest(digest.hex(), expected)


def user_named(session: Session, username: str) -> User | None:
    """The user with this username, or None."""
    return session.scalars(select(User).where(User.username == username)).first()


def existing_user(session: Session, username: str) -> User:
    """The user with this username; LookupError if there is none."""
    user = user_named(session, username)
    if user is None:
        raise LookupError(f"user {username!r} does not exist")
    return user


def create_user(session: Session, username: str, full_name: str, role: str, password: str) -> User:
    """Add an active user (audited: the session needs an actor)."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not username.strip() or not full_name.strip():
        raise ValueError("a user needs a username and a printed full name")
    if user_named(session, username) is not None:
        raise ValueError(f"user {username!r} exists already")
    user = User(username=username, full_name=full_name, role=role, active=True)
    set_password(user, password)
    session.add(user)
    session.flush()
    return user


def record_hash(session: Session, record: Any) -> str:
    """SHA-256 of the record's row as stored (every column, canonical JSON)."""
    table = inspect(record).mapper.local_table
    keys = inspect(record).mapper.primary_key_from_instance(record)
    pk = table.primary_key.columns
    row = session.execute(
        select(table).where(*(column == key for column, key in zip(pk, keys, strict=True)))
    ).one()
    content = {name: json_value(value) for name, value in row._mapping.items()}
    return hashlib.sha256(canonical_json(content)).hexdigest()


def sign(
    session: Session, user: User, password: str, record: Any, meaning: str, reason: str
) -> Signature:
    """Sign `record` as `user`, who must be the session's actor and re-enter the password."""
    if meaning not in MEANINGS:
        raise ValueError(f"meaning {meaning!r} is not one of {', '.join(MEANINGS)}")
    if not reason.strip():
        raise ValueError("a signature needs a reason")
    actor = session.info.get("actor")
    if actor != user.username:
        log.warning("signature refused: actor %r tried to sign as %r", actor, user.username)
        raise SignatureRefused(f"{actor!r} cannot sign for the account of {user.username!r}")
    if not user.active:
        log.warning("signature refused: %r is inactive", user.username)
        raise SignatureRefused(f"user {user.username!r} is inactive")
    if not check_password(user, password):
        log.warning("signature refused: wrong password for %r", user.username)
        raise SignatureRefused(f"wrong password for {user.username!r}")
    if user.role not in SIGNING_ROLES[meaning]:
        raise SignatureRefused(f"role {user.role!r} cannot sign a {meaning}")
    if inspect(record).transient:
        raise ValueError("only a stored record can be signed")
    session.flush()  # the hash covers the record as it is stored, pending changes included
    signature = Signature(
        user_id=user.id,
        username=user.username,
        full_name=user.full_name,
        meaning=meaning,
        reason=reason,
        signed_at=utcnow(),
        record_table=inspect(record).mapper.local_table.name,
        record_key=record_key(record),
        record_hash=record_hash(session, record),
    )
    session.add(signature)
    with audit_reason(session, reason):  # the signature's audit entry carries its own reason
        session.flush()
    return signature


def signatures_on(session: Session, record: Any) -> list[Signature]:
    """Every signature given on `record`, oldest first."""
    return list(
        session.scalars(
            select(Signature)
            .where(Signature.record_table == inspect(record).mapper.local_table.name)
            .where(Signature.record_key == record_key(record))
            .order_by(Signature.id)
        )
    )


def signature_matches(session: Session, signature: Signature, record: Any) -> bool:
    """True if `signature` is on `record` and the record is unchanged since it was signed."""
    return (
        signature.record_table == inspect(record).mapper.local_table.name
        and signature.record_key == record_key(record)
        and signature.record_hash == record_hash(session, record)
    )


def signature_manifest(signature: Signature) -> str:
    """The signature as shown with the record: printed name, date and time, meaning."""
    return "\n".join(
        (
            f"Signed by: {signature.full_name} ({signature.username})",
            f"Date and time: {signature.signed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
            f"Meaning: {signature.meaning.replace('_', ' ').capitalize()}",
            f"Record: {signature.record_table} {signature.record_key}",
        )
    )
