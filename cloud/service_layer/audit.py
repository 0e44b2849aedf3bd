"""The reason the audit trail records with a session's changes (cloud.adapters.orm.audit
reads it from `session.info["reason"]` when the session flushes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session


@contextmanager
def audit_reason(session: Session, reason: str) -> Iterator[None]:
    """Changes flushed inside the block carry `reason`; the caller's reason comes back after."""
    previous = session.info.get("reason")
    session.info["reason"] = reason
    try:
        yield
    finally:
        # The caller's reason (or its absence) is theirs: a later change must not borrow ours.
        if previous is None:
            session.info.pop("reason", None)
        else:
            session.info["reason"] = previous
