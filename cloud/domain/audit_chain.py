"""The audit trail's keyed chain as pure values: canonical JSON, entries, the HMAC that links
each entry to the one before, signed checkpoints of the head, and the walk that finds the
first entry edited, deleted, moved or sealed with another key. No I/O; the database side is
cloud.adapters.orm.audit and cloud.adapters.audit_seals.

The database writes entries; it never holds the key. A sealer that does computes, entry by
entry in id order, mac(n) = HMAC-SHA-256(key, mac(n-1) + "\\n" + canonical JSON of entry n),
starting from 64 zeros, and stores it as entry n's seal. Whoever can write the database but
does not hold the key cannot make an edited entry's seal match again.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

GENESIS = "0" * 64  # the previous seal of the first entry
MIN_KEY_BYTES = 32


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
    """The one byte string a JSON value is sealed as: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


class AuditKeyError(ValueError):
    """The audit key is missing, too short or not the one the trail was sealed with."""


@dataclass(frozen=True)
class AuditKey:
    """The secret the chain is keyed with; the database never holds it."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise AuditKeyError(
                f"the audit key has {len(self.secret)} bytes, at least {MIN_KEY_BYTES} are needed "
                f"(make one with `coldchain-cloud audit-key`)"
            )

    @property
    def key_id(self) -> str:
        """A public name for the key, stored with every seal: tells keys apart, reveals nothing."""
        return hmac.new(self.secret, b"coldchain audit key id", hashlib.sha256).hexdigest()[:16]

    def mac(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()


@dataclass(frozen=True, kw_only=True)
class ChainEntry:
    """One audit entry as the chain sees it; its seal covers every field."""

    id: int
    at: datetime
    actor: str
    action: str
    table: str
    key: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    reason: str | None
    outside_application: bool = False  # written by SQL that did not say who acted

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
            "outside_application": self.outside_application,
        }


def link(key: AuditKey, prev_mac: str, entry: ChainEntry) -> str:
    """The entry's seal: HMAC-SHA-256 over the previous seal and the entry's canonical JSON."""
    return key.mac(prev_mac.encode() + b"\n" + canonical_json(entry.content()))


@dataclass(frozen=True)
class Seal:
    """What the sealer stored for one entry."""

    entry_id: int
    mac: str
    key_id: str
    sealed_at: datetime


# --- checkpoints: the head, signed, kept outside the database -----------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at a moment: entry id and seal, signed with the key."""

    entry_id: int
    mac: str
    key_id: str
    at: datetime
    signature: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "mac": self.mac,
            "key_id": self.key_id,
            "at": json_value(self.at),
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}


def sign_checkpoint(key: AuditKey, entry_id: int, mac: str, at: datetime) -> Checkpoint:
    unsigned = Checkpoint(entry_id, mac, key.key_id, at)
    return Checkpoint(entry_id, mac, key.key_id, at, key.mac(canonical_json(unsigned.body())))


def parse_checkpoint(key: AuditKey, data: Mapping[str, Any], where: str) -> Checkpoint:
    """A checkpoint read back; ValueError naming `where` if it is malformed or not signed
    with `key`."""
    try:
        checkpoint = Checkpoint(
            entry_id=int(data["entry_id"]),
            mac=str(data["mac"]),
            key_id=str(data["key_id"]),
            at=datetime.fromisoformat(str(data["at"])),
            signature=str(data["signature"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: not a checkpoint ({exc!r})") from exc
    expected = key.mac(canonical_json(checkpoint.body()))
    if not hmac.compare_digest(expected, checkpoint.signature):
        raise ValueError(f"{where}: the signature does not match (another key, or edited)")
    return checkpoint


# --- verification -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainProblem:
    """The first thing wrong with a chain: which entry, what kind of damage, the evidence."""

    entry_id: int
    kind: str  # gap in sequence, seal mismatch, seal missing, key mismatch, checkpoint mismatch
    detail: str

    def __str__(self) -> str:
        return f"entry {self.entry_id}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class ChainReport:
    checked: int  # entries walked
    head: str  # the seal of the last entry walked (computed with the key, else as stored)
    problem: ChainProblem | None = None
    keyed: bool = True  # False: the seals' MACs were not recomputed (no key)
    pending: tuple[tuple[int, str], ...] = ()  # unsealed entries and their computed seals
    overdue: tuple[int, ...] = ()  # unsealed entries older than the grace period
    sealed_late: tuple[int, ...] = ()  # entries sealed later than the grace period
    outside: tuple[tuple[int, str], ...] = ()  # entries written outside the application
    checkpoints: int = 0  # checkpoints that matched

    @property
    def intact(self) -> bool:
        return self.problem is None

    def notes(self) -> list[str]:
        """What is not damage but someone should know."""
        notes = []
        if self.outside:
            first_id, actor = self.outside[0]
            notes.append(
                f"{len(self.outside)} entries record changes made outside the application "
                f"(first: entry {first_id}, database user {actor})"
            )
        if self.overdue:
            notes.append(
                f"{len(self.overdue)} entries are not sealed yet and older than the grace "
                f"period (first: entry {self.overdue[0]}): is a sealer running with the key?"
            )
        if self.sealed_late:
            notes.append(
                f"{len(self.sealed_late)} entries were sealed later than the grace period "
                f"(first: entry {self.sealed_late[0]})"
            )
        if not self.keyed:
            notes.append("seals were not recomputed: no audit key given")
        return notes


def verify_chain(
    rows: Iterable[tuple[ChainEntry, Seal | None]],
    key: AuditKey | None,
    *,
    head_id: int | None = None,
    last_sealed_id: int | None = None,
    checkpoints: Iterable[Checkpoint] = (),
    now: datetime | None = None,
    grace: timedelta = timedelta(minutes=10),
) -> ChainReport:
    """Walk entries in id order with their seals; report the first gap, missing seal, seal
    that does not match, or checkpoint the trail no longer agrees with.

    `head_id` is the last id the database assigned, `last_sealed_id` the highest id with a
    seal: either beyond the last entry means entries were deleted from the end.
    """
    by_entry: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        by_entry.setdefault(checkpoint.entry_id, []).append(checkpoint)
    checked, prev = 0, GENESIS
    first_unsealed: int | None = None
    pending: list[tuple[int, str]] = []
    overdue: list[int] = []
    late: list[int] = []
    outside: list[tuple[int, str]] = []
    matched = 0

    def report(problem: ChainProblem | None = None) -> ChainReport:
        return ChainReport(
            checked,
            prev,
            problem,
            keyed=key is not None,
            pending=tuple(pending),
            overdue=tuple(overdue),
            sealed_late=tuple(late),
            outside=tuple(outside),
            checkpoints=matched,
        )

    def broken(entry_id: int, kind: str, detail: str) -> ChainReport:
        return report(ChainProblem(entry_id, kind, detail))

    for entry, seal in rows:
        expected = checked + 1
        if entry.id != expected:
            return broken(
                expected,
                "gap in sequence",
                f"expected entry {expected}, found entry {entry.id} next (entries deleted)",
            )
        mac = link(key, prev, entry) if key is not None else None
        if seal is None:
            if first_unsealed is None:
                first_unsealed = entry.id
            if mac is not None:
                pending.append((entry.id, mac))
            if now is not None and now - entry.at > grace:
                overdue.append(entry.id)
        else:
            if first_unsealed is not None:
                return broken(
                    first_unsealed,
                    "seal missing",
                    f"it has no seal but entry {entry.id} after it has (its seal was deleted)",
                )
            if key is not None and seal.key_id != key.key_id:
                return broken(
                    entry.id,
                    "key mismatch",
                    f"sealed with key {seal.key_id}, verified with key {key.key_id}",
                )
            if mac is not None and not hmac.compare_digest(mac, seal.mac):
                return broken(
                    entry.id,
                    "seal mismatch",
                    f"stored {seal.mac[:16]}..., its content and the chain before it give "
                    f"{mac[:16]}... (the entry was edited, moved or its seal forged)",
                )
            if seal.sealed_at - entry.at > grace:
                late.append(entry.id)
        if entry.outside_application:
            outside.append((entry.id, entry.actor))
        current = mac if mac is not None else (seal.mac if seal is not None else prev)
        for checkpoint in by_entry.pop(entry.id, []):
            if key is not None and not hmac.compare_digest(checkpoint.mac, current):
                return broken(
                    entry.id,
                    "checkpoint mismatch",
                    f"the checkpoint of {json_value(checkpoint.at)} recorded the chain up to "
                    f"this entry as {checkpoint.mac[:16]}..., it is now {current[:16]}... "
                    f"(this entry or one before it was rewritten since)",
                )
            matched += 1
        checked, prev = entry.id, current
    ends = [
        (recorded, what)
        for recorded, what in (
            (head_id, "the chain head records"),
            (last_sealed_id, "a seal exists for"),
            (max(by_entry, default=None), "a checkpoint records"),
        )
        if recorded is not None and recorded > checked
    ]
    if ends:
        recorded, what = max(ends)
        return broken(
            checked + 1,
            "gap in sequence",
            f"{what} entry {recorded} but the log ends at entry {checked} "
            f"(entries deleted from the end)",
        )
    return report()
