"""The audit trail and electronic signatures on a real PostgreSQL (the core also on SQLite).

Tampering is done the way a privileged user would: straight SQL with the append-only
triggers disabled. `coldchain-cloud verify-audit` runs as a subprocess, with the audit key.
The application's role and raw SQL are in test_audit_roles.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, Integer, Numeric, String, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from cloud.adapters.audit_database import install_audit_triggers
from cloud.adapters.audit_seals import seal_pending, verify_trail
from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.audit import AuditChainHead, AuditEntry, AuditError, audited
from cloud.adapters.orm.base import UTCDateTime
from cloud.adapters.orm.people import Signature, User
from cloud.adapters.orm.readings import Site, Zone
from cloud.domain.audit_chain import GENESIS, AuditKey, ChainReport
from cloud.service_layer.signatures import (
    SignatureRefused,
    check_password,
    create_user,
    sign,
    signature_manifest,
    signature_matches,
    signatures_on,
)

ROOT = Path(__file__).resolve().parents[2]
KEY_TEXT = "test-audit-key-0123456789abcdef0123456789abcdef"
KEY = AuditKey(KEY_TEXT.encode())


def verified(engine: Engine) -> ChainReport:
    return verify_trail(engine, KEY)


class ScratchBase(DeclarativeBase):
    """Tables of this module only; created by the tests that need them, not by migrations."""

    type_annotation_map = {datetime: UTCDateTime}


@audited
class Deviation(ScratchBase):
    """A stand-in regulated record with a generated key, a decimal and a time."""

    __tablename__ = "test_deviations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    opened_at: Mapped[datetime]
    cost: Mapped[Decimal] = mapped_column(Numeric(10, 2, asdecimal=True))
    summary: Mapped[str] = mapped_column(String(200))


# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")


@pytest.fixture
def engine_for() -> Iterator[Callable[[str], Engine]]:
    engines: list[Engine] = []

    def make(url: str) -> Engine:
        engines.append(make_engine(url))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def engine(db_url: str, engine_for: Callable[[str], Engine]) -> Engine:
    return engine_for(db_url)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def entries(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def add_zone(session: Session, zone_id: str = "site-a-cold", high: float = 8.0) -> Zone:
    if session.get(Site, "site-a") is None:
        session.add(Site(id="site-a", name="Warehouse A", kind="warehouse"))
    zone = Zone(id=zone_id, site_id="site-a", name="Cold room", kind="cold_room", low=2.0)
    zone.high = high
    session.add(zone)
    return zone


def seed(sessions: sessionmaker[Session], updates: int) -> None:
    """One zone created, then `updates` changes of its high limit: 1 + updates entries."""
    with sessions(info={"actor": "ops.anna"}) as session:
        zone = add_zone(session)
        session.commit()
        session.info["reason"] = "limits revised per SOP-CC-012"
        for i in range(updates):
            zone.high = 8.0 + (i + 1) / 10
            session.commit()


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloud.entrypoints.cli", *args],
        cwd=ROOT,
        env={**os.environ, "COLDCHAIN_AUDIT_KEY": KEY_TEXT},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def tamper(pg_url: str, *statements: str) -> None:
    """Run SQL on the trail as the database owner would, append-only triggers disabled."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for table in ("audit_entries", "audit_seals"):
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for statement in statements:
            conn.execute(statement)
        for table in ("audit_entries", "audit_seals"):
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


# --- recording changes --------------------------------------------------------------------


def test_create_update_delete_are_recorded_with_old_and_new_values(
    sessions: sessionmaker[Session], engine: Engine
):
    before = datetime.now(UTC)
    with sessions(info={"actor": "ops.anna"}) as session:
        zone = add_zone(session)
        session.commit()
        session.info["reason"] = "new cold room profile, change control CC-0042"
        zone.high = 7.5
        zone.name = "Cold room 1"
        session.commit()
        zone.low = 2.0  # the same value: no change, no entry
        session.commit()
        session.info.update(actor="qa.jane", reason="room decommissioned, CC-0043")
        session.delete(zone)
        session.commit()

    create, change, delete = entries(engine)
    assert [e.id for e in (create, change, delete)] == [1, 2, 3]
    assert (create.action, create.record_table, create.record_key) == (
        "create",
        "zones",
        "site-a-cold",
    )
    assert create.old_values is None
    assert create.new_values == {
        "id": "site-a-cold",
        "site_id": "site-a",
        "name": "Cold room",
        "kind": "cold_room",
        "low": 2.0,
        "high": 8.0,
    }
    assert (create.actor, create.reason) == ("ops.anna", None)

    assert change.action == "update"
    assert change.old_values == {"high": 8.0, "name": "Cold room"}
    assert change.new_values == {"high": 7.5, "name": "Cold room 1"}
    assert repr(change.old_values["high"]) == "8.0"  # a float limit, as the application wrote it
    assert (change.actor, change.reason) == (
        "ops.anna",
        "new cold room profile, change control CC-0042",
    )

    assert delete.action == "delete"
    assert delete.old_values is not None and delete.old_values["high"] == 7.5
    assert delete.new_values is None
    assert (delete.actor, delete.reason) == ("qa.jane", "room decommissioned, CC-0043")

    assert not any(e.outside_application for e in (create, change, delete))
    assert all(before <= e.at <= datetime.now(UTC) for e in (create, change, delete))
    report = verified(engine)
    assert report.intact and report.checked == 3 and len(report.pending) == 3
    assert seal_pending(engine, KEY) == 3
    sealed = verified(engine)
    assert sealed.intact and sealed.pending == () and sealed.head == report.head


def test_old_value_is_known_even_when_the_object_was_expired(
    sessions: sessionmaker[Session], engine: Engine
):
    seed(sessions, 0)
    with sessions(info={"actor": "ops.anna", "reason": "summer profile"}) as session:
        zone = session.get(Zone, "site-a-cold")
        assert zone is not None
        session.expire(zone)
        zone.high = 6.0
        session.commit()
    change = entries(engine)[-1]
    assert (change.old_values, change.new_values) == ({"high": 8.0}, {"high": 6.0})


def test_values_are_json_with_iso_times_decimal_strings_and_generated_keys(
    sessions: sessionmaker[Session], engine: Engine
):
    ScratchBase.metadata.create_all(engine)
    with engine.begin() as conn:  # what a migration does for an audited table (PostgreSQL)
        install_audit_triggers(conn)
    opened = datetime(2026, 11, 22, 6, 15, 30, 250000, tzinfo=UTC)
    with sessions(info={"actor": "qa.jane"}) as session:
        deviation = Deviation(opened_at=opened, cost=Decimal("12.50"), summary="door ajar")
        session.add(deviation)
        session.commit()
        session.info["reason"] = "courier invoice received"
        deviation.cost = Decimal("99.90")
        deviation.opened_at = opened + timedelta(hours=1)
        session.commit()
    create, change = entries(engine)
    assert create.record_table == "test_deviations" and create.record_key == "1"
    assert create.new_values == {
        "id": 1,
        "opened_at": "2026-11-22T06:15:30.250000+00:00",
        "cost": "12.50",
        "summary": "door ajar",
    }
    assert change.old_values == {"cost": "12.50", "opened_at": "2026-11-22T06:15:30.250000+00:00"}
    assert change.new_values == {"cost": "99.90", "opened_at": "2026-11-22T07:15:30.250000+00:00"}
    assert verified(engine).intact


def test_flush_without_an_actor_is_refused_and_writes_nothing(
    sessions: sessionmaker[Session], engine: Engine
):
    with sessions() as session:
        add_zone(session)
        with pytest.raises(AuditError, match=r"zones.*need an acting user"):
            session.commit()
        session.info["actor"] = "ops.anna"  # the same changes go through once someone owns them
        session.commit()
    with sessions() as session:
        session.get(Site, "site-a").name = "not regulated: no actor needed"  # type: ignore[union-attr]
        session.commit()
        assert session.scalar(select(func.count()).select_from(Zone)) == 1
    assert [e.actor for e in entries(engine)] == ["ops.anna"]


def test_update_and_delete_need_a_reason(sessions: sessionmaker[Session], engine: Engine):
    seed(sessions, 0)
    with sessions(info={"actor": "ops.anna"}) as session:
        zone = session.get(Zone, "site-a-cold")
        zone.high = 9.0  # type: ignore[union-attr]
        with pytest.raises(AuditError, match="update of zones site-a-cold needs a reason"):
            session.flush()
        session.rollback()
        session.delete(session.get(Zone, "site-a-cold"))
        with pytest.raises(AuditError, match="delete of zones site-a-cold needs a reason"):
            session.flush()
    assert len(entries(engine)) == 1


def test_a_rolled_back_change_leaves_no_entry_and_no_gap(
    sessions: sessionmaker[Session], engine: Engine
):
    with sessions(info={"actor": "ops.anna"}) as session:
        add_zone(session)
        session.flush()
        session.rollback()
        add_zone(session, "site-a-freezer", high=-15.0)
        session.commit()
    (entry,) = entries(engine)
    assert (entry.id, entry.record_key) == (1, "site-a-freezer")
    assert verified(engine).intact


def test_the_trail_is_written_by_the_flush_hook_only(
    sessions: sessionmaker[Session], engine: Engine
):
    seed(sessions, 1)
    with sessions(info={"actor": "mallory", "reason": "tidy up"}) as session:
        entry = session.get(AuditEntry, 1)
        entry.actor = "someone else"  # type: ignore[union-attr]
        with pytest.raises(AuditError, match="appended by the audit trail's writers only"):
            session.flush()
        session.rollback()
        with pytest.raises(AuditError, match="bulk writes to zones bypass the audit trail"):
            session.execute(update(Zone).values(high=30.0))
        with pytest.raises(AuditError, match="bulk writes to audit_entries"):
            session.execute(update(AuditEntry).values(actor="x"))
    with engine.connect() as conn:
        for sql in ("UPDATE audit_entries SET actor = 'x'", "DELETE FROM audit_entries"):
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text(sql))
            conn.rollback()
    assert verified(engine).checked == 2


# --- verify-audit -------------------------------------------------------------------------


def test_verify_audit_reports_an_intact_trail_and_seals_it(
    db_url: str, sessions: sessionmaker[Session], engine: Engine
):
    seed(sessions, 4)
    with sessions() as session:
        head = session.get(AuditChainHead, 1)
    assert head is not None and head.last_id == 5
    expected = verified(engine).head
    result = cli("verify-audit", "--database-url", db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"audit trail intact: 5 entries checked, head {expected}",
        "sealed 5 entries that had no seal yet",
    ]
    again = cli("verify-audit", "--database-url", db_url)
    assert again.stdout.strip() == f"audit trail intact: 5 entries checked, head {expected}"
    assert verified(engine).pending == ()


def test_verify_audit_on_an_empty_trail(pg_url: str):
    result = cli("verify-audit", "--database-url", pg_url)
    assert result.returncode == 0, result.stderr
    assert f"0 entries checked, head {GENESIS}" in result.stdout


def test_verify_audit_needs_the_key(pg_url: str, engine_for: Callable[[str], Engine]):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_AUDIT")}
    run = [sys.executable, "-m", "cloud.entrypoints.cli", "verify-audit", "--database-url"]
    result = subprocess.run(
        [*run, pg_url], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "no audit key" in result.stderr
    seed(session_factory(engine_for(pg_url)), 1)
    assert cli("verify-audit", "--database-url", pg_url).returncode == 0  # sealed with KEY
    other = {**env, "COLDCHAIN_AUDIT_KEY": "another-key-" + "9" * 40}
    result = subprocess.run(
        [*run, pg_url], cwd=ROOT, env=other, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "entry 1: key mismatch: sealed with key " in result.stderr


def test_verify_audit_on_a_database_without_a_trail(tmp_path: Path):
    result = cli("verify-audit", "--database-url", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert result.returncode == 2
    assert "cannot read the audit trail" in result.stderr and "audit_chain_head" in result.stderr


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        pytest.param(
            ["""UPDATE audit_entries SET new_values = '{"high": 25.0}' WHERE id = 3"""],
            "entry 3: seal mismatch",
            id="value-edited",
        ),
        pytest.param(
            ["UPDATE audit_entries SET actor = 'qa.jane' WHERE id = 2"],
            "entry 2: seal mismatch",
            id="actor-edited",
        ),
        pytest.param(
            ["DELETE FROM audit_seals WHERE entry_id = 2"],
            "entry 2: seal missing",
            id="seal-deleted",
        ),
        pytest.param(
            ["UPDATE audit_seals SET mac = repeat('a', 64) WHERE entry_id = 4"],
            "entry 4: seal mismatch",
            id="seal-forged",
        ),
        pytest.param(
            ["DELETE FROM audit_entries WHERE id = 3"],
            "entry 3: gap in sequence: expected entry 3, found entry 4",
            id="entry-deleted",
        ),
        pytest.param(
            ["DELETE FROM audit_entries WHERE id = 5"],
            "entry 5: gap in sequence: the chain head records entry 5",
            id="last-entry-deleted",
        ),
        pytest.param(
            [
                "UPDATE audit_entries SET id = -1 WHERE id = 2",
                "UPDATE audit_entries SET id = 2 WHERE id = 3",
                "UPDATE audit_entries SET id = 3 WHERE id = -1",
            ],
            "entry 2: seal mismatch",
            id="entries-swapped",
        ),
        pytest.param(
            [
                "DELETE FROM audit_entries WHERE id = 3",
                "UPDATE audit_entries SET id = id - 1 WHERE id > 3",
                "UPDATE audit_chain_head SET last_id = 4",
                "DELETE FROM audit_seals WHERE entry_id = 5",
            ],
            "entry 3: seal mismatch",
            id="deleted-and-renumbered",
        ),
    ],
)
def test_verify_audit_finds_the_first_tampered_entry(
    pg_url: str, engine_for: Callable[[str], Engine], statements: list[str], expected: str
):
    seed(session_factory(engine_for(pg_url)), 4)
    assert seal_pending(engine_for(pg_url), KEY) == 5
    tamper(pg_url, *statements)
    result = cli("verify-audit", "--database-url", pg_url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"audit trail BROKEN at {expected}"), result.stderr


def test_verify_audit_finds_an_edited_entry_on_sqlite(
    sqlite_url: str, engine_for: Callable[[str], Engine]
):
    seed(session_factory(engine_for(sqlite_url)), 2)
    assert seal_pending(engine_for(sqlite_url), KEY) == 3
    with engine_for(sqlite_url).begin() as conn:
        conn.execute(text("DROP TRIGGER audit_entries_no_update"))
        conn.execute(text("UPDATE audit_entries SET reason = 'a better reason' WHERE id = 2"))
    result = cli("verify-audit", "--database-url", sqlite_url)
    assert result.returncode == 1
    assert "entry 2: seal mismatch" in result.stderr


# --- concurrent writers -------------------------------------------------------------------


def test_concurrent_writers_extend_one_valid_chain(db_url: str, engine: Engine):
    sessions = session_factory(engine)
    with sessions(info={"actor": "ops.anna"}) as session:
        for name in ("a", "b"):
            add_zone(session, f"zone-{name}")
        session.commit()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(zone_id: str) -> None:
        try:
            with sessions(info={"actor": f"ops.{zone_id}", "reason": "load test"}) as session:
                zone = session.get(Zone, zone_id)
                assert zone is not None
                start.wait()
                for i in range(25):
                    zone.high = 8.0 + (i + 1) / 100
                    session.commit()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(z,)) for z in ("zone-a", "zone-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    log = entries(engine)
    assert [e.id for e in log] == list(range(1, 53))
    assert sum(e.actor == "ops.zone-a" for e in log) == 25
    assert sum(e.actor == "ops.zone-b" for e in log) == 25
    report = verified(engine)
    assert report.intact and report.checked == 52


def test_a_second_writer_waits_for_the_chain_head(pg_url: str, engine_for: Callable[[str], Engine]):
    sessions = session_factory(engine_for(pg_url))
    seed(sessions, 0)
    second_done = threading.Event()

    def second() -> None:
        with sessions(info={"actor": "ops.second"}) as session:
            add_zone(session, "zone-second")
            session.commit()
        second_done.set()

    with sessions(info={"actor": "ops.first"}) as first:
        add_zone(first, "zone-first")
        first.flush()  # holds the chain head until it commits
        thread = threading.Thread(target=second)
        thread.start()
        try:
            assert not second_done.wait(1.0), "the second writer did not wait for the first"
        finally:
            first.commit()
    assert second_done.wait(30)
    thread.join()
    log = entries(engine_for(pg_url))
    assert [(e.id, e.actor) for e in log] == [(1, "ops.anna"), (2, "ops.first"), (3, "ops.second")]
    assert verified(engine_for(pg_url)).intact


# --- users and electronic signatures ------------------------------------------------------

PASSWORDS = {"qa.jane": "cold-chain-2-8", "op.otto": "forklift-4242", "qa.ina": "on-leave-2026"}


@pytest.fixture
def people(sessions: sessionmaker[Session]) -> None:
    with sessions(info={"actor": "admin.ada"}) as session:
        create_user(session, "qa.jane", "Jane Doe", "qa", PASSWORDS["qa.jane"])
        create_user(session, "op.otto", "Otto Operator", "operator", PASSWORDS["op.otto"])
        inactive = create_user(session, "qa.ina", "Ina Inactive", "qa", PASSWORDS["qa.ina"])
        add_zone(session)
        session.commit()
        session.info["reason"] = "left the company"
        inactive.active = False
        session.commit()


def user(session: Session, username: str) -> User:
    found = session.scalar(select(User).where(User.username == username))
    assert found is not None
    return found


@pytest.mark.usefixtures("people")
def test_signature_with_the_right_password(sessions: sessionmaker[Session], engine: Engine):
    with sessions(info={"actor": "qa.jane"}) as session:
        jane, zone = user(session, "qa.jane"), session.get(Zone, "site-a-cold")
        before = datetime.now(UTC)
        signature = sign(
            session, jane, "cold-chain-2-8", zone, "approval", "limits verified", username="qa.jane"
        )
        session.commit()
        assert before <= signature.signed_at <= datetime.now(UTC)
        assert (signature.full_name, signature.meaning, signature.record_table) == (
            "Jane Doe",
            "approval",
            "zones",
        )
        assert signature.record_key == "site-a-cold" and len(signature.record_hash) == 64
        assert signatures_on(session, zone) == [signature]
        assert signature_matches(session, signature, zone)
        assert signature_manifest(signature) == (
            "Signed by: Jane Doe (qa.jane)\n"
            f"Date and time: {signature.signed_at:%Y-%m-%d %H:%M:%S} UTC\n"
            "Meaning: Approval\n"
            "Record: zones site-a-cold"
        )

        session.info["reason"] = "limit widened after signing"
        zone.high = 9.0  # type: ignore[union-attr]
        session.commit()
        assert not signature_matches(session, signature, zone)

    signed = [e for e in entries(engine) if e.record_table == "signatures"]
    assert len(signed) == 1
    assert (signed[0].action, signed[0].actor, signed[0].reason) == (
        "create",
        "qa.jane",
        "limits verified",
    )
    assert signed[0].new_values is not None
    assert signed[0].new_values["meaning"] == "approval"
    assert signed[0].new_values["full_name"] == "Jane Doe"
    assert signed[0].new_values["record_hash"] == signature.record_hash
    assert verified(engine).intact


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("actor", "signer", "password", "meaning", "refusal"),
    [
        ("qa.jane", "qa.jane", "cold-chain-2-9", "release", "wrong password for 'qa.jane'"),
        ("op.otto", "qa.jane", "cold-chain-2-8", "release", "'op.otto' cannot sign for"),
        (None, "qa.jane", "cold-chain-2-8", "release", "None cannot sign for"),
        ("qa.ina", "qa.ina", "on-leave-2026", "review", "user 'qa.ina' is inactive"),
        ("op.otto", "op.otto", "forklift-4242", "release", "role 'operator' cannot sign a release"),
    ],
    ids=["wrong-password", "another-users-account", "no-actor", "inactive", "role"],
)
def test_signature_refused(
    sessions: sessionmaker[Session],
    engine: Engine,
    actor: str | None,
    signer: str,
    password: str,
    meaning: str,
    refusal: str,
):
    with sessions(info={"actor": actor}) as session:
        zone = session.get(Zone, "site-a-cold")
        with pytest.raises(SignatureRefused, match=refusal):
            sign(
                session, user(session, signer), password, zone, meaning, "batch ok", username=signer
            )
        session.commit()
        assert session.scalar(select(func.count()).select_from(Signature)) == 0
    assert not [e for e in entries(engine) if e.record_table == "signatures"]


@pytest.mark.usefixtures("people")
def test_an_operator_may_sign_a_review(sessions: sessionmaker[Session]):
    with sessions(info={"actor": "op.otto"}) as session:
        otto = user(session, "op.otto")
        zone = session.get(Zone, "site-a-cold")
        signature = sign(
            session,
            otto,
            "forklift-4242",
            zone,
            "review",
            "checked the readings",
            username="op.otto",
        )
        session.commit()
        assert "Meaning: Review" in signature_manifest(signature)
        with pytest.raises(ValueError, match="meaning 'approved' is not one of"):
            sign(session, otto, "forklift-4242", zone, "approved", "x", username="op.otto")


@pytest.mark.usefixtures("people")
def test_passwords_are_salted_argon2id_and_never_in_the_trail(
    sessions: sessionmaker[Session], engine: Engine
):
    with sessions() as session:
        jane, otto = user(session, "qa.jane"), user(session, "op.otto")
        assert jane.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert jane.password_hash.split("$")[4] != otto.password_hash.split("$")[4]  # salts
        assert check_password(jane, "cold-chain-2-8") and not check_password(jane, "forklift-4242")
    created = [e for e in entries(engine) if e.record_table == "users" and e.action == "create"]
    assert [e.actor for e in created] == ["admin.ada"] * 3
    assert created[0].new_values is not None
    assert created[0].new_values["password_hash"] == "[redacted]"
    assert created[0].new_values["password_salt"] == "[redacted]"
    deactivated = [e for e in entries(engine) if e.record_table == "users" and e.action == "update"]
    assert [(e.old_values, e.new_values, e.reason) for e in deactivated] == [
        ({"active": True}, {"active": False}, "left the company")
    ]


def test_create_user_command(pg_url: str, engine_for: Callable[[str], Engine]):
    args = ("create-user", "qa.jane", "--full-name", "Jane Doe", "--role", "qa")
    url = ("--database-url", pg_url)
    result = cli(*args, "--password-stdin", "--actor", "admin.ada", *url, stdin="s3cret-pw-2026\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "created qa qa.jane (Jane Doe)"
    again = cli(*args, "--password-stdin", *url, stdin="s3cret-pw-2026\n")
    assert again.returncode == 1 and "user 'qa.jane' exists already" in again.stderr
    short = cli("create-user", "op.otto", "--full-name", "Otto", "--role", "operator",
                "--password-stdin", *url, stdin="short\n")  # fmt: skip
    assert short.returncode == 1 and "at least 12 characters" in short.stderr

    engine = engine_for(pg_url)
    with Session(engine) as session:
        jane = user(session, "qa.jane")
        assert (jane.full_name, jane.role, jane.active) == ("Jane Doe", "qa", True)
        assert check_password(jane, "s3cret-pw-2026")
    (entry,) = entries(engine)
    assert (entry.actor, entry.record_table, entry.record_key) == ("admin.ada", "users", "1")
    assert cli("verify-audit", *url).returncode == 0


def test_time_is_taken_per_flush(sessions: sessionmaker[Session], engine: Engine):
    with sessions(info={"actor": "ops.anna"}) as session:
        add_zone(session, "zone-1")
        session.commit()
        time.sleep(0.01)
        add_zone(session, "zone-2")
        session.commit()
    first, second = entries(engine)
    assert first.at < second.at


def test_the_scheduler_seals_and_checkpoints_the_trail(
    sqlite_url: str, engine_for: Callable[[str], Engine], tmp_path: Path
):
    seed(session_factory(engine_for(sqlite_url)), 2)
    checkpoints = tmp_path / "checkpoints.jsonl"
    run = ("scheduler", "--database-url", sqlite_url, "--checkpoint-file", str(checkpoints))
    result = cli(*run, "--once")
    assert result.returncode == 0, result.stderr
    assert "sealed=3" in result.stdout and "checkpointed=True" in result.stdout
    report = verified(engine_for(sqlite_url))
    assert report.intact and report.pending == ()
    assert f'"mac": "{report.head}"' in checkpoints.read_text()
    check = cli("verify-audit", "--database-url", sqlite_url, "--checkpoints", str(checkpoints))
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().endswith(", 1 checkpoints match")
