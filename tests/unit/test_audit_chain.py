"""The audit trail's hash chain as plain values (cloud.domain.audit_chain): canonical JSON,
hashing, verification."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from cloud.domain.audit_chain import (
    GENESIS,
    ChainEntry,
    canonical_json,
    entry_hash,
    json_value,
    seal,
    verify_chain,
)

T0 = datetime(2026, 11, 22, 9, 30, 0, 123456, tzinfo=UTC)


def build(n: int) -> list[ChainEntry]:
    """A valid chain of n zone changes."""
    entries: list[ChainEntry] = []
    prev = GENESIS
    for i in range(1, n + 1):
        entry = seal(
            ChainEntry(
                id=i,
                at=T0 + timedelta(minutes=i),
                actor="qa.jane",
                action="update",
                table="zones",
                key="site-a-cold",
                old={"high": 8.0 + i},
                new={"high": 9.0 + i},
                reason=f"limit change {i}",
                prev_hash=prev,
            )
        )
        entries.append(entry)
        prev = entry.hash
    return entries


def head(entries: list[ChainEntry]) -> tuple[int, str]:
    return (entries[-1].id, entries[-1].hash) if entries else (0, GENESIS)


class Colour(enum.Enum):
    RED = "red"


def test_json_values_are_iso_times_and_decimal_strings():
    cet = timezone(timedelta(hours=1))
    assert json_value(datetime(2026, 1, 1, 13, 0, tzinfo=cet)) == "2026-01-01T12:00:00+00:00"
    assert json_value(date(2026, 1, 31)) == "2026-01-31"
    assert json_value(Decimal("12.50")) == "12.50"
    assert json_value(b"\x01\xff") == "01ff"
    assert json_value(Colour.RED) == "red"
    assert json_value(float("nan")) == "nan"
    assert json_value({"a": [Decimal("1"), None, True, 2, 2.5]}) == {"a": ["1", None, True, 2, 2.5]}


def test_canonical_json_sorts_keys_without_spaces():
    assert canonical_json({"b": 1, "a": {"d": "é", "c": None}}) == (
        '{"a":{"c":null,"d":"é"},"b":1}'.encode()
    )
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})


def test_hash_is_sha256_of_canonical_content_including_previous_hash():
    entry = build(1)[0]
    assert entry.prev_hash == GENESIS
    content = entry.content()
    assert content["prev_hash"] == GENESIS and "hash" not in content
    assert entry.hash == hashlib.sha256(canonical_json(content)).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {"id": 2},
        {"at": T0 + timedelta(microseconds=1)},
        {"actor": "qa.john"},
        {"action": "delete"},
        {"table": "batches"},
        {"key": "site-b-cold"},
        {"old": {"high": 8.5}},
        {"new": {"high": 9.5}},
        {"new": None},
        {"reason": "another reason"},
        {"prev_hash": "1" * 64},
    ],
)
def test_every_field_is_covered_by_the_hash(change):
    entry = build(1)[0]
    assert entry_hash(replace(entry, **change)) != entry.hash


def test_intact_chain():
    entries = build(5)
    report = verify_chain(entries, head(entries))
    assert report.intact and report.checked == 5 and report.head_hash == entries[-1].hash


def test_empty_chain_is_intact_at_genesis():
    report = verify_chain([], (0, GENESIS))
    assert report.intact and report.checked == 0 and report.head_hash == GENESIS


def test_edited_entry_is_a_hash_mismatch():
    entries = build(5)
    entries[2] = replace(entries[2], new={"high": 25.0})
    problem = verify_chain(entries, head(entries)).problem
    assert problem is not None
    assert (problem.entry_id, problem.kind) == (3, "hash mismatch")
    assert str(problem).startswith("entry 3: hash mismatch")


def test_edited_and_rehashed_entry_breaks_the_next_link():
    entries = build(5)
    entries[2] = seal(replace(entries[2], actor="someone.else"))
    report = verify_chain(entries, head(entries))
    assert report.problem is not None
    assert (report.problem.entry_id, report.problem.kind) == (4, "broken link to previous")
    assert report.checked == 3


def test_deleted_entry_is_a_gap():
    entries = build(5)
    del entries[2]
    problem = verify_chain(entries, head(entries)).problem
    assert problem is not None
    assert (problem.entry_id, problem.kind) == (3, "gap in sequence")
    assert "found entry 4" in problem.detail


def test_deleted_and_renumbered_entry_breaks_the_link():
    entries = build(5)
    del entries[2]
    entries = [replace(e, id=i) for i, e in enumerate(entries, start=1)]
    problem = verify_chain(entries, (4, entries[-1].hash)).problem
    assert problem is not None
    assert (problem.entry_id, problem.kind) == (3, "broken link to previous")


def test_swapped_entries_break_the_link():
    entries = build(5)
    second, third = entries[1], entries[2]
    entries[1], entries[2] = replace(third, id=2), replace(second, id=3)
    problem = verify_chain(entries, head(entries)).problem
    assert problem is not None
    assert (problem.entry_id, problem.kind) == (2, "broken link to previous")


def test_first_entry_must_chain_from_genesis():
    entries = build(2)
    entries[0] = seal(replace(entries[0], prev_hash="f" * 64))
    problem = verify_chain(entries, None).problem
    assert problem is not None
    assert (problem.entry_id, problem.kind) == (1, "broken link to previous")


def test_deleted_last_entry_is_caught_by_the_head():
    entries = build(5)
    recorded = head(entries)
    assert verify_chain(entries[:-1], None).intact  # without the head it cannot be seen
    problem = verify_chain(entries[:-1], recorded).problem
    assert problem is not None
    assert (problem.entry_id, problem.kind) == (5, "gap in sequence")


def test_entry_appended_behind_the_heads_back_is_reported():
    entries = build(5)
    problem = verify_chain(entries, head(entries[:4])).problem
    assert problem is not None
    assert (problem.entry_id, problem.kind) == (5, "head mismatch")


def test_rewritten_last_entry_is_caught_by_the_head():
    entries = build(5)
    recorded = head(entries)
    entries[-1] = seal(replace(entries[-1], new={"high": 30.0}))
    problem = verify_chain(entries, recorded).problem
    assert problem is not None
    assert (problem.entry_id, problem.kind) == (5, "head mismatch")


def test_verification_reads_entries_lazily_and_stops_at_the_first_problem():
    entries = build(5)
    entries[1] = replace(entries[1], reason="edited")
    seen: list[int] = []

    def stream():
        for entry in entries:
            seen.append(entry.id)
            yield entry

    problem = verify_chain(stream(), head(entries)).problem
    assert problem is not None and problem.entry_id == 2
    assert seen == [1, 2]


def test_the_chain_is_pure_domain_code() -> None:
    import ast
    from pathlib import Path

    import cloud.domain.audit_chain as chain

    tree = ast.parse(Path(chain.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {m for m in imported if m.split(".")[0] in ("sqlalchemy", "flask", "cloud")}
