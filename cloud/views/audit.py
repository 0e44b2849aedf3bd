"""The audit trail as the control room shows it: filtered entries (secrets never shown),
signature details, and whether the keyed chain is intact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cloud.adapters.audit_seals import verify_trail
from cloud.adapters.orm.audit import REDACTED, AuditEntry, redacted_columns
from cloud.adapters.orm.people import Signature
from cloud.domain.audit_chain import AuditKey
from cloud.service_layer.signatures import signature_manifest

LIMIT = 200


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    table: str
    key: str
    reason: str | None
    changes: str
    signatures: list[str]  # manifests of the signatures this entry records or is signed by
    outside_application: bool = False  # SQL that did not say who acted: actor = database user


@dataclass(frozen=True)
class Integrity:
    intact: bool
    checked: int
    problem: str | None
    notes: tuple[str, ...] = ()


def _without_secrets(table: str, values: dict[str, Any] | None) -> dict[str, Any] | None:
    """Secret columns shown as redacted, whatever the entry holds (entries written before a
    column was marked secret included)."""
    secret = redacted_columns().get(table, frozenset())
    if not values or not secret:
        return values
    return {k: REDACTED if k in secret else v for k, v in values.items()}


def _changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str:
    old, new = old or {}, new or {}
    keys = sorted(set(old) | set(new))
    parts = []
    for key in keys:
        before, after = old.get(key), new.get(key)
        if key in old and key in new:
            parts.append(f"{key}: {before!r} \u2192 {after!r}")
        elif key in new:
            parts.append(f"{key}={after!r}")
        else:
            parts.append(f"{key} was {before!r}")
    text = "; ".join(parts)
    return text if len(text) <= 400 else text[:397] + "..."


def audit_entries(
    session: Session,
    table: str | None = None,
    actor: str | None = None,
    text: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    signed_only: bool = False,
    limit: int = LIMIT,
) -> list[AuditRow]:
    """The newest entries matching every filter given (text matches the record key/reason)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if table:
        query = query.where(AuditEntry.record_table == table)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if since:
        query = query.where(AuditEntry.at >= since)
    if until:
        query = query.where(AuditEntry.at <= until)
    if text:
        like = f"%{text}%"
        query = query.where(AuditEntry.record_key.like(like) | AuditEntry.reason.like(like))
    if signed_only:
        query = query.where(AuditEntry.record_table == "signatures")
    entries = list(session.scalars(query))
    signatures: dict[tuple[str, str], list[Signature]] = {}
    for signature in session.scalars(
        select(Signature).where(
            Signature.record_key.in_({e.record_key for e in entries})
            | Signature.id.in_(
                [int(e.record_key) for e in entries if e.record_table == "signatures"]
                if entries
                else []
            )
        )
    ):
        signatures.setdefault((signature.record_table, signature.record_key), []).append(signature)
        signatures.setdefault(("signatures", str(signature.id)), []).append(signature)
    return [
        AuditRow(
            id=e.id,
            at=e.at,
            actor=e.actor,
            action=e.action,
            table=e.record_table,
            key=e.record_key,
            reason=e.reason,
            changes=_changes(
                _without_secrets(e.record_table, e.old_values),
                _without_secrets(e.record_table, e.new_values),
            ),
            signatures=[
                signature_manifest(s) for s in signatures.get((e.record_table, e.record_key), [])
            ],
            outside_application=e.outside_application,
        )
        for e in entries
    ]


def audited_tables(session: Session) -> list[str]:
    return sorted(session.scalars(select(AuditEntry.record_table).distinct()))


def actors(session: Session) -> list[str]:
    return sorted(session.scalars(select(AuditEntry.actor).distinct()))


def integrity(session: Session, key: AuditKey | None = None) -> Integrity:
    """Walk the whole trail (cloud.adapters.audit_seals.verify_trail) and say whether it is
    intact; the seals are recomputed only with the key."""
    bind = session.get_bind()
    report = verify_trail(bind if isinstance(bind, Engine) else bind.engine, key)
    return Integrity(
        report.intact,
        report.checked,
        None if report.intact else str(report.problem),
        tuple(report.notes()),
    )
