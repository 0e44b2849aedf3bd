"""People and machines that act on records: users, their electronic signatures, API tokens.

Only hashes of passwords and token secrets are stored, and the audit trail redacts them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.adapters.orm.audit import audited
from cloud.adapters.orm.base import Base
from cloud.domain.access import KINDS, ROLES
from cloud.domain.clock import utcnow

MEANINGS = ("review", "approval", "release", "rejection", "shipment_release")
# Who may sign with which meaning: viewers only read, admins hold no QA duty (segregation of
# duties, cloud.domain.access); dispositions and shipping releases are QA's. Machines never sign.
SIGNING_ROLES = {
    "review": frozenset({"operator", "qa"}),
    "approval": frozenset({"qa"}),
    "release": frozenset({"qa"}),
    "rejection": frozenset({"qa"}),
    "shipment_release": frozenset({"qa"}),  # QA releases cold goods for shipment
}


class User(Base):
    """A person who can act on records and sign them, or a machine that acts through tokens.

    A role an admin gives waits in `pending_role` (the user acts as a viewer meanwhile) until
    a second admin, not `role_changed_by`, confirms it."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_salt: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(8), default="person", server_default="person")
    pending_role: Mapped[str | None] = mapped_column(String(16))
    role_changed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # After an admin's reset the user can do nothing but choose a new password.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    password_changed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(f"role IN {ROLES}", name="users_role"),
        CheckConstraint(f"pending_role IN {ROLES}", name="users_pending_role"),
        CheckConstraint(f"kind IN {KINDS}", name="users_kind"),
    )


class Signature(Base):
    """An electronic signature: who (printed name), when (UTC), what it means, on which record."""

    __tablename__ = "signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    full_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime]
    record_table: Mapped[str] = mapped_column(String(64))
    record_key: Mapped[str] = mapped_column(String(200))
    record_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(f"meaning IN {MEANINGS}", name="signatures_meaning"),
        Index("signatures_record", "record_table", "record_key"),
    )


audited(User, redact={"password_salt", "password_hash"})
audited(Signature)


PREFIX = "cct_"


class ApiToken(Base):
    """A bearer token issued by an admin to themselves or to a machine user, with scopes
    (space-separated, cloud.domain.access.SCOPES) and an expiry; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))  # the first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    scopes: Mapped[str] = mapped_column(String(200), default="", server_default="")
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


audited(ApiToken, redact={"token_hash"})
