"""Users and electronic signatures (21 CFR Part 11 subpart C).

A signature is given by the authenticated actor with both components, user ID and password,
the first time in a continuous session (a login session, until it ends or idles out), and the
password only on later signings in the same session (11.200(a)(1)). Wrong passwords count
towards the account's lock-out. It binds the printed name, the date and time (UTC), the
meaning and a SHA-256 of the signed record's stored content, and lands in the audit trail
like any regulated record.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.audit import canonical_json, json_value, record_key
from cloud.adapters.orm.people import MEANINGS, ROLES, SIGNING_ROLES, Signature, User
from cloud.domain.access import effective_role
from cloud.domain.clock import utcnow
from cloud.service_layer.accounts import is_locked, note_right_password, note_wrong_password
from cloud.service_layer.audit import audit_reason
from cloud.service_layer.login_sessions import note_signature, signed_before
from cloud.service_layer.passwords import MIN_PASSWORD, check_policy, hash_password, verify_password

log = logging.getLogger(__name__)
__all__ = ["MIN_PASSWORD", "SignatureRefused", "UserIdRequired", "check_password", "sign"]


class SignatureRefused(Exception):
    """A signature that was not given: wrong password, inactive user, not the actor, role,
    a bearer token or a machine user."""


TOKEN_SIGNING = (
    "a signature needs the signer present: log in with your password (a bearer token cannot sign)"
)


class UserIdRequired(SignatureRefused):
    """The first signing of a session was given without the user ID."""


def set_password(user: User, password: str) -> None:
    """Set a password that meets the policy (cloud.service_layer.passwords), hashed."""
    check_policy(password, user.username or "")
    user.password_salt = ""  # argon2id keeps its salt in the hash
    user.password_hash = hash_password(password)


def check_password(user: User, password: str) -> bool:
    """True if `password` is the user's (no lock-out counting: see accounts.check_password_of)."""
    return verify_password(user.password_hash, user.password_salt, password)


def user_named(session: Session, username: str) -> User | None:
    """The user with this username, or None."""
    return session.scalars(select(User).where(User.username == username)).first()


def existing_user(session: Session, username: str) -> User:
    """The user with this username; LookupError if there is none."""
    user = user_named(session, username)
    if user is None:
        raise LookupError(f"user {username!r} does not exist")
    return user


def create_user(
    session: Session,
    username: str,
    full_name: str,
    role: str,
    password: str,
    kind: str = "person",
    pending: tuple[str, int] | None = None,
) -> User:
    """Add an active user in the role at once (audited: the session needs an actor). For
    installers and fixtures; admins add users through cloud.service_layer.roles, where
    `pending` is the role given and the id of the admin who gave it, awaiting confirmation."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not username.strip() or not full_name.strip():
        raise ValueError("a user needs a username and a printed full name")
    if user_named(session, username) is not None:
        raise ValueError(f"user {username!r} exists already")
    user = User(username=username, full_name=full_name, role=role, active=True, kind=kind)
    if pending is not None:
        user.pending_role, user.role_changed_by = pending
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
    session: Session,
    user: User,
    password: str,
    record: Any,
    meaning: str,
    reason: str,
    *,
    username: str | None = None,
) -> Signature:
    """Sign `record` as `user`, who must be the session's actor and give the password, and
    the user ID (`username`) too unless the login session in `session.info["login_session"]`
    has signed before. A wrong password ends the caller's transaction: the failure is
    committed on its own, so it counts towards the lock-out whatever the caller does next."""
    if meaning not in MEANINGS:
        raise ValueError(f"meaning {meaning!r} is not one of {', '.join(MEANINGS)}")
    if not reason.strip():
        raise ValueError("a signature needs a reason")
    if session.info.get("via") == "token":
        log.warning("signature refused: %r tried to sign over a bearer token", user.username)
        raise SignatureRefused(TOKEN_SIGNING)
    if user.kind != "person":
        raise SignatureRefused(f"{user.username!r} is a machine user: machines never sign")
    actor = session.info.get("actor")
    if actor != user.username:
        log.warning("signature refused: actor %r tried to sign as %r", actor, user.username)
        raise SignatureRefused(f"{actor!r} cannot sign for the account of {user.username!r}")
    if not user.active:
        log.warning("signature refused: %r is inactive", user.username)
        raise SignatureRefused(f"user {user.username!r} is inactive")
    login_session = session.info.get("login_session")
    if username is None and not signed_before(session, login_session, user.id):
        raise UserIdRequired(
            "the first signing in a session needs your user ID as well as your password"
        )
    if username is not None and username != user.username:
        log.warning("signature refused: %r gave the user ID %r", user.username, username)
        raise SignatureRefused(f"the user ID {username!r} is not that of {user.username!r}")
    if is_locked(session, user.id):
        raise SignatureRefused(f"the account {user.username!r} is locked: ask an admin")
    if not check_password(user, password):
        log.warning("signature refused: wrong password for %r", user.username)
        name, user_id = user.username, user.id
        session.rollback()  # the failure must outlive the refused transaction
        counted = session.get(User, user_id)
        if counted is not None:
            note_wrong_password(session, counted, "signature")
            session.commit()
        raise SignatureRefused(f"wrong password for {name!r}")
    note_right_password(session, user, password)
    role = effective_role(user.role, user.pending_role)
    if role not in SIGNING_ROLES[meaning]:
        pending = f" until a second admin confirms {user.pending_role}" if user.pending_role else ""
        raise SignatureRefused(f"role {role!r}{pending} cannot sign a {meaning}")
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
    note_signature(session, login_session, signature.signed_at)
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
