"""The audit trail's hash chain as pure values: canonical JSON, entries, hashes, and the walk
that finds the first entry edited, deleted or moved. No I/O; cloud.adapters.orm.audit stores
the chain."""

from __future__ import annotations

import enum
import hashlib
import json
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

GENESIS = "0" * 64  # the previous hash of the first entry


def json_value(value: Any) -> Any:
    """A column value as JSON: datetimes ISO 8601 in UTC, decimals as strings, bytes as hex."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return str(value)


def canonical_json(value: Any) -> bytes:
    """The one byte string a JSON value hashes as: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


@dataclass(frozen=True, kw_only=True)
class ChainEntry:
    """One audit entry as the chain sees it; `hash` covers every other field."""

    id: int
    at: datetime
    actor: str
    action: str
    table: str
    key: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    reason: str | None
    prev_hash: str
    hash: str = ""

    def content(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": json_value(self.at),
            "actor": self.actor,
            "action": self.action,
            "table": self.table,
            "key": self.key,
            "old": self.old,
            "new": self.new,
            "reason": self.reason,
            "prev_hash": self.prev_hash,
        }


def entry_hash(entry: ChainEntry) -> str:
    """SHA-256 (hex) of the entry's canonical JSON, which includes the previous hash."""
    return hashlib.sha256(canonical_json(entry.content())).hexdigest()


def seal(entry: ChainEntry) -> ChainEntry:
    """The entry with its hash filled in."""
    return replace(entry, hash=entry_hash(entry))


@dataclass(frozen=True)
class ChainProblem:
    """The first thing wrong with a chain: which entry, what kind of damage, the evidence."""

    entry_id: int
    kind: str  # "hash mismatch", "broken link to previous", "gap in sequence", "head mismatch"
    detail: str

    def __str__(self) -> str:
        return f"entry {self.entry_id}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head_hash: str
    problem: ChainProblem | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify_chain(entries: Iterable[ChainEntry], head: tuple[int, str] | None) -> ChainReport:
    """Walk entries in id order; report the first gap, broken link or altered entry.

    `head` is the (last id, last hash) the appenders recorded, which reveals entries removed
    from, or added to, the end of the log; None when no head was recorded.
    """
    checked, prev_hash = 0, GENESIS

    def broken(entry_id: int, kind: str, detail: str) -> ChainReport:
        return ChainReport(checked, prev_hash, ChainProblem(entry_id, kind, detail))

    for entry in entries:
        expected = checked + 1
        if entry.id != expected:
            return broken(
                expected,
                "gap in sequence",
                f"expected entry {expected}, found entry {entry.id} next (entries deleted)",
            )
        if entry.prev_hash != prev_hash:
            return broken(
                entry.id,
                "broken link to previous",
                f"it chains from {entry.prev_hash[:16]}... but entry {checked} hashes to "
                f"{prev_hash[:16]}... (entries reordered, deleted or edited)",
            )
        computed = entry_hash(entry)
        if computed != entry.hash:
            return broken(
                entry.id,
                "hash mismatch",
                f"stored {entry.hash[:16]}..., content hashes to {computed[:16]}... "
                f"(the entry was edited)",
            )
        checked, prev_hash = entry.id, entry.hash
    if head is not None:
        last_id, last_hash = head
        if last_id > checked:
            return broken(
                checked + 1,
                "gap in sequence",
                f"the chain head records {last_id} entries but the log ends at entry {checked} "
                f"(entries deleted from the end)",
            )
        if last_id < checked:
            return broken(
                last_id + 1,
                "head mismatch",
                f"the chain head ends at entry {last_id}: later entries were not appended "
                f"through the audit trail",
            )
        if last_hash != prev_hash:
            return broken(
                checked,
                "head mismatch",
                f"the chain head records hash {last_hash[:16]}... for it, the log "
                f"{prev_hash[:16]}... (the entry was rewritten)",
            )
    return ChainReport(checked, prev_hash)
