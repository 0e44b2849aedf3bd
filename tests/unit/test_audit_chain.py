"""The audit trail's keyed chain as plain values (cloud.domain.audit_chain): canonical JSON,
seals, signed checkpoints, verification."""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from cloud.domain.audit_chain import (
    GENESIS,
    AuditKey,
    AuditKeyError,
    ChainEntry,
    Seal,
    canonical_json,
    json_value,
    link,
    parse_checkpoint,
    sign_checkpoint,
    verify_chain,
)

T0 = datetime(2026, 11, 22, 9, 30, 0, 123456, tzinfo=UTC)
KEY = AuditKey(b"k" * 32)
OTHER = AuditKey(b"o" * 32)


def entries(n: int) -> list[ChainEntry]:
    return [
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
        )
        for i in range(1, n + 1)
    ]


def sealed(log: list[ChainEntry], key: AuditKey = KEY) -> list[tuple[ChainEntry, Seal | None]]:
    rows: list[tuple[ChainEntry, Seal | None]] = []
    prev = GENESIS
    for entry in log:
        prev = link(key, prev, entry)
        rows.append((entry, Seal(entry.id, prev, key.key_id, entry.at + timedelta(seconds=5))))
    return rows


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


def test_seal_is_hmac_of_previous_seal_and_canonical_content():
    entry = entries(1)[0]
    data = GENESIS.encode() + b"\n" + canonical_json(entry.content())
    assert link(KEY, GENESIS, entry) == hmac.new(b"k" * 32, data, hashlib.sha256).hexdigest()
    assert link(KEY, GENESIS, entry) != hashlib.sha256(data).hexdigest()  # keyed, not plain
    assert link(OTHER, GENESIS, entry) != link(KEY, GENESIS, entry)


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
        {"new": None},
        {"reason": "another reason"},
        {"outside_application": True},
    ],
)
def test_every_field_is_covered_by_the_seal(change):
    entry = entries(1)[0]
    assert link(KEY, GENESIS, replace(entry, **change)) != link(KEY, GENESIS, entry)


def test_a_short_key_is_refused_and_the_key_never_shows():
    with pytest.raises(AuditKeyError, match="at least 32"):
        AuditKey(b"short")
    assert "kkkk" not in repr(KEY) and len(KEY.key_id) == 16


def test_intact_chain():
    rows = sealed(entries(5))
    report = verify_chain(rows, KEY, head_id=5, last_sealed_id=5)
    assert report.intact and report.checked == 5 and report.head == rows[-1][1].mac  # type: ignore[union-attr]


def test_empty_chain_is_intact_at_genesis():
    report = verify_chain([], KEY, head_id=0)
    assert report.intact and report.checked == 0 and report.head == GENESIS


def test_edited_entry_is_a_seal_mismatch_and_stops_the_walk():
    rows = sealed(entries(5))
    rows[2] = (replace(rows[2][0], new={"high": 25.0}), rows[2][1])
    report = verify_chain(iter(rows), KEY)
    assert report.problem is not None
    assert (report.problem.entry_id, report.problem.kind) == (3, "seal mismatch")
    assert report.checked == 2


def test_resealing_an_edit_without_the_key_is_found():
    log = entries(5)
    log[1] = replace(log[1], actor="qa.forger")
    forged = sealed(log[:2], OTHER)  # a plausible chain, made with another key
    rows = sealed(entries(5))
    rows[:2] = forged
    problem = verify_chain(rows, KEY).problem
    assert problem is not None and (problem.entry_id, problem.kind) == (1, "key mismatch")
    # ... and with the right key id stamped on, the MAC gives it away.
    rows[:2] = [(e, replace(s, key_id=KEY.key_id)) for e, s in forged if s is not None]
    problem = verify_chain(rows, KEY).problem
    assert problem is not None and (problem.entry_id, problem.kind) == (1, "seal mismatch")


def test_deleted_entry_is_a_gap():
    rows = sealed(entries(5))
    del rows[2]
    problem = verify_chain(rows, KEY).problem
    assert problem is not None and (problem.entry_id, problem.kind) == (3, "gap in sequence")


def test_deleted_last_entry_is_caught_by_the_head_or_its_seal():
    rows = sealed(entries(5))[:-1]
    assert verify_chain(rows, KEY).intact  # without head, seals or checkpoints: unseen
    for ends in ({"head_id": 5}, {"last_sealed_id": 5}):
        problem = verify_chain(rows, KEY, **ends).problem  # type: ignore[arg-type]
        assert problem is not None and (problem.entry_id, problem.kind) == (5, "gap in sequence")


def test_a_missing_seal_before_a_sealed_entry_is_reported():
    rows = sealed(entries(4))
    rows[1] = (rows[1][0], None)
    problem = verify_chain(rows, KEY).problem
    assert problem is not None and (problem.entry_id, problem.kind) == (2, "seal missing")


def test_unsealed_tail_is_pending_and_overdue_after_the_grace_period():
    log = entries(4)
    rows = sealed(log)[:2] + [(e, None) for e in log[2:]]
    now = log[3].at + timedelta(minutes=5)
    report = verify_chain(rows, KEY, now=now, grace=timedelta(minutes=3))
    assert report.intact and report.checked == 4
    assert [entry_id for entry_id, _ in report.pending] == [3, 4]
    assert report.pending[-1][1] == sealed(log)[3][1].mac  # type: ignore[union-attr]
    assert report.overdue == (3, 4)
    assert any("not sealed yet" in note for note in report.notes())


def test_entries_outside_the_application_are_noted():
    log = entries(3)
    log[1] = replace(log[1], actor="coldchain_app", outside_application=True)
    report = verify_chain(sealed(log), KEY)
    assert report.intact and report.outside == ((2, "coldchain_app"),)
    assert "entry 2, database user coldchain_app" in report.notes()[0]


def test_checkpoints_match_and_find_a_rewritten_or_truncated_trail():
    rows = sealed(entries(5))
    at3 = sign_checkpoint(KEY, 3, rows[2][1].mac, T0)  # type: ignore[union-attr]
    at5 = sign_checkpoint(KEY, 5, rows[4][1].mac, T0)  # type: ignore[union-attr]
    report = verify_chain(rows, KEY, checkpoints=[at3, at5])
    assert report.intact and report.checkpoints == 2
    # Rewritten from entry 2 on by someone holding the key: only the checkpoint knows.
    log = entries(5)
    log[1] = replace(log[1], reason="rewritten")
    problem = verify_chain(sealed(log), KEY, checkpoints=[at3, at5]).problem
    assert problem is not None and (problem.entry_id, problem.kind) == (3, "checkpoint mismatch")
    # Entries 4 and 5 gone with their seals, and the head put back.
    problem = verify_chain(rows[:3], KEY, head_id=3, checkpoints=[at3, at5]).problem
    assert problem is not None and (problem.entry_id, problem.kind) == (4, "gap in sequence")
    assert "a checkpoint records entry 5" in problem.detail


def test_checkpoints_are_signed():
    checkpoint = sign_checkpoint(KEY, 7, "a" * 64, T0)
    assert parse_checkpoint(KEY, checkpoint.as_json(), "line 1") == checkpoint
    with pytest.raises(ValueError, match="line 1: the signature does not match"):
        parse_checkpoint(KEY, {**checkpoint.as_json(), "entry_id": 6}, "line 1")
    with pytest.raises(ValueError, match="line 2: the signature does not match"):
        parse_checkpoint(OTHER, checkpoint.as_json(), "line 2")
    with pytest.raises(ValueError, match="line 3: not a checkpoint"):
        parse_checkpoint(KEY, {"entry_id": 1}, "line 3")


def test_without_the_key_only_sequence_and_seals_are_checked():
    rows = sealed(entries(3))
    rows[1] = (replace(rows[1][0], reason="edited"), rows[1][1])
    report = verify_chain(rows, None)
    assert report.intact and not report.keyed
    assert "no audit key" in report.notes()[-1]


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
