"""The audit trail against someone holding the application's own database rights, on a
real PostgreSQL with two roles: the OWNER runs migrations and owns tables and triggers, the
APPLICATION role is what ingest, API, control room and scheduler log in as.

Roles are cluster-wide: each test makes its own, with unique names, and drops them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from cloud import bootstrap
from cloud.adapters.audit_database import AuditSetupError
from cloud.adapters.audit_seals import seal_pending, verify_trail
from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.alerting import NotificationChannel
from cloud.adapters.orm.audit import AuditEntry
from cloud.adapters.orm.people import User
from cloud.domain.audit_chain import AuditKey
from cloud.entrypoints.scheduler import Scheduler
from cloud.service_layer.audit_keeping import AuditKeeper, AuditKeeping
from cloud.service_layer.notifications import add_channel
from cloud.service_layer.signatures import create_user
from cloud.views.audit import audit_entries
from tests.conftest import PG_ADMIN

ROOT = Path(__file__).resolve().parents[2]
KEY_TEXT = "roles-test-audit-key-0123456789abcdef0123456789"
KEY = AuditKey(KEY_TEXT.encode())
WEBHOOK_SECRET = "whsec-very-secret-hmac-key-42"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloud.entrypoints.cli", *args],
        cwd=ROOT,
        env={**os.environ, "COLDCHAIN_AUDIT_KEY": KEY_TEXT},
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass(frozen=True)
class Roles:
    owner: str
    app: str
    owner_url: str
    app_url: str


@pytest.fixture
def roles() -> Iterator[Roles]:
    """A database owned by a fresh owner role, set up by `db-roles` with a fresh app role."""
    suffix = uuid.uuid4().hex[:8]
    owner, app, name = f"cc_owner_{suffix}", f"cc_app_{suffix}", f"coldchain_roles_{suffix}"
    base = PG_ADMIN.rsplit("@", 1)[1].rsplit("/", 1)[0]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {owner} LOGIN CREATEROLE")
        admin.execute(f'CREATE DATABASE "{name}" OWNER {owner}')
        try:
            setup = cli("db-roles", "--owner-url", f"postgresql://{owner}@{base}/{name}",
                        "--app-role", app)  # fmt: skip
            assert setup.returncode == 0, setup.stderr
            assert f"created login role {app}" in setup.stdout
            yield Roles(
                owner,
                app,
                f"postgresql://{owner}@{base}/{name}",
                f"postgresql://{app}@{base}/{name}",
            )
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f"DROP ROLE IF EXISTS {app}")
            admin.execute(f"DROP ROLE IF EXISTS {owner}")


def seed_as_application(url: str) -> None:
    """What the application does: users made through the ORM, as an actor."""
    db = bootstrap.database(url, migrate=True)  # as the app role: checks, changes nothing
    with db.sessions(info={"actor": "admin.ada"}) as session:
        create_user(session, "op.otto", "Otto Operator", "operator", "forklift-4242")
        add_channel(session, "ops", "webhook", "https://93.184.216.34/x", secret=WEBHOOK_SECRET)
        session.commit()
    db.engine.dispose()


def refused(conn: psycopg.Connection[Any], statement: str) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(statement)
    return str(caught.value)


def test_the_application_role_cannot_rewrite_the_trail(roles: Roles, tmp_path: Path):
    seed_as_application(roles.app_url)
    with psycopg.connect(roles.app_url, autocommit=True) as app:
        # What was seen: a raw role change, then a forged entry signed "qa".
        app.execute("UPDATE users SET role = 'qa' WHERE username = 'op.otto'")
        forged = (
            "INSERT INTO audit_entries (id, at, actor, action, record_table, record_key, "
            "reason, outside_application) VALUES (99, now(), 'qa.jane', 'update', 'users', "
            "'1', 'promotion approved', false)"
        )
        assert "permission denied for table audit_entries" in refused(app, forged)
        for statement in (
            "UPDATE audit_entries SET actor = 'qa.jane'",
            "DELETE FROM audit_entries",
            "TRUNCATE audit_entries",
            "UPDATE audit_chain_head SET last_id = 0",
            "UPDATE audit_seals SET mac = 'x'",
            "DELETE FROM audit_seals",
            "TRUNCATE audit_seals",
            "TRUNCATE users",  # would skip the row triggers
            "CREATE TABLE shadow (id int)",
            "SET session_replication_role = replica",  # would skip every trigger
        ):
            refused(app, statement)
        # The dropped-trigger attack: only the owner may touch triggers.
        assert "must be owner" in refused(app, "DROP TRIGGER coldchain_audit ON users")
        assert "must be owner" in refused(app, "ALTER TABLE users DISABLE TRIGGER ALL")
        assert "must be owner" in refused(app, "DROP FUNCTION coldchain_audit_record() CASCADE")

    engine = make_engine(roles.app_url)
    with session_factory(engine)() as session:
        change = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "update", AuditEntry.record_table == "users"
            )
        ).one()
    assert (change.actor, change.outside_application) == (roles.app, True)
    assert (change.old_values, change.new_values) == ({"role": "operator"}, {"role": "qa"})

    # verify-audit, run with the application's rights, seals the trail and tells of it.
    result = cli("verify-audit", "--database-url", roles.app_url)
    assert result.returncode == 0, result.stderr
    assert (
        f"made outside the application (first: entry {change.id}, database user {roles.app})"
        in (result.stderr)
    )
    # A seal forged with the app's INSERT right is found.
    with psycopg.connect(roles.app_url, autocommit=True) as app:
        app.execute("UPDATE users SET full_name = 'Otto O.' WHERE username = 'op.otto'")
        next_id = app.execute("SELECT max(id) FROM audit_entries").fetchone()[0]  # type: ignore[index]
        app.execute(
            "INSERT INTO audit_seals VALUES (%s, repeat('f', 64), %s, now())", (next_id, KEY.key_id)
        )
    result = cli("verify-audit", "--database-url", roles.app_url)
    assert result.returncode == 1
    assert f"audit trail BROKEN at entry {next_id}: seal mismatch" in result.stderr
    engine.dispose()


def test_a_missing_trigger_stops_the_application_and_the_owner_puts_it_back(roles: Roles):
    with psycopg.connect(roles.owner_url, autocommit=True) as owner:
        owner.execute("ALTER TABLE users DISABLE TRIGGER coldchain_audit")
        owner.execute("DROP TRIGGER coldchain_audit ON zones")
    with pytest.raises(AuditSetupError, match="trigger coldchain_audit on users is disabled"):
        bootstrap.database(roles.app_url, migrate=True)
    result = cli("migrate", "--database-url", roles.owner_url, "--app-role", roles.app)
    assert result.returncode == 0, result.stderr
    seed_as_application(roles.app_url)  # the app starts again, and is recorded
    engine = make_engine(roles.app_url)
    with session_factory(engine)() as session:
        assert [e.record_table for e in session.scalars(select(AuditEntry))] == [
            "users",
            "notification_channels",
        ]
    engine.dispose()


def test_secrets_never_reach_the_trail_or_its_views(roles: Roles):
    seed_as_application(roles.app_url)
    with psycopg.connect(roles.app_url, autocommit=True) as app:
        app.execute("UPDATE notification_channels SET secret = 'whsec-raw-sql-secret-000000'")
        app.execute("UPDATE users SET password_hash = 'scrypt$raw'")
    engine = make_engine(roles.app_url)
    with session_factory(engine)() as session:
        stored = json.dumps(
            [(e.old_values, e.new_values) for e in session.scalars(select(AuditEntry))]
        )
        shown = json.dumps([r.changes for r in audit_entries(session)])
        channel = session.scalars(select(NotificationChannel)).one()
        user = session.scalars(select(User)).one()
    # An argon2id hash holds its salt (the salt column is empty then); a scrypt one does not.
    salt = [user.password_salt] if user.password_salt else []
    for secret in (WEBHOOK_SECRET, "whsec-raw-sql-secret", "scrypt$", "$argon2id$", *salt):
        assert secret not in stored and secret not in shown
    assert channel.secret == "whsec-raw-sql-secret-000000"  # the channel still has it
    assert stored.count("[redacted]") >= 5
    # An entry that holds a secret anyway (written before the column was marked) is shown
    # redacted all the same.
    with psycopg.connect(roles.owner_url, autocommit=True) as owner:
        owner.execute("ALTER TABLE audit_entries DISABLE TRIGGER USER")
        owner.execute(
            "UPDATE audit_entries SET new_values = json_build_object('secret', %s::text) "
            "WHERE record_table = 'notification_channels' AND action = 'update'",
            (WEBHOOK_SECRET,),
        )
    with session_factory(engine)() as session:
        shown = json.dumps([r.changes for r in audit_entries(session)])
    assert WEBHOOK_SECRET not in shown and "secret='[redacted]'" in shown
    engine.dispose()


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802  (http.server's name)
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_checkpoints_outside_the_database_catch_a_truncated_trail(pg_url: str, tmp_path: Path):
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    seed_as_application(pg_url)
    engine = make_engine(pg_url)
    keeping = AuditKeeping(
        key=KEY,
        checkpoint_file=checkpoints,
        checkpoint_url=f"http://127.0.0.1:{server.server_port}/checkpoints",
    )
    scheduler = Scheduler(session_factory(engine), audit=AuditKeeper(engine, keeping))
    report = scheduler.tick()
    server.shutdown()
    server.server_close()
    assert report.sealed == 2 and report.checkpointed
    (line,) = checkpoints.read_text().splitlines()
    assert json.loads(line) == _Receiver.received[-1]
    assert json.loads(line)["entry_id"] == 2
    assert verify_trail(engine, KEY).pending == ()
    result = cli("verify-audit", "--database-url", pg_url, "--checkpoints", str(checkpoints))
    assert result.returncode == 0, result.stderr
    assert "1 checkpoints match" in result.stdout

    # Someone with the owner's rights removes the last entry, its seal, and moves the head.
    with psycopg.connect(pg_url, autocommit=True) as owner:
        for table in ("audit_entries", "audit_seals"):
            owner.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        owner.execute("DELETE FROM audit_entries WHERE id = 2")
        owner.execute("DELETE FROM audit_seals WHERE entry_id = 2")
        owner.execute("UPDATE audit_chain_head SET last_id = 1")
    assert verify_trail(engine, KEY).intact  # the database alone no longer shows it
    result = cli("verify-audit", "--database-url", pg_url, "--checkpoints", str(checkpoints))
    assert result.returncode == 1
    assert "BROKEN at entry 2: gap in sequence: a checkpoint records entry 2" in result.stderr
    # A checkpoint line edited to match is refused: it is signed.
    edited = json.loads(line) | {"entry_id": 1}
    checkpoints.write_text(json.dumps(edited) + "\n")
    result = cli("verify-audit", "--database-url", pg_url, "--checkpoints", str(checkpoints))
    assert result.returncode == 2 and "the signature does not match" in result.stderr
    assert seal_pending(engine, KEY) == 0
    engine.dispose()


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_the_migration_takes_webhook_secrets_out_of_earlier_entries(kind: str, tmp_path: Path):
    from sqlalchemy import text

    from cloud.adapters.migrate import upgrade

    name = f"coldchain_test_{uuid.uuid4().hex[:10]}"
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'before.sqlite'}"
    else:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url, "0015_calibration_evidence")
        clear = json.dumps({"name": "ops", "secret": WEBHOOK_SECRET})
        engine = make_engine(url)
        with engine.begin() as conn:  # an entry as the earlier code wrote it
            conn.execute(
                text(
                    "INSERT INTO audit_entries (id, at, actor, action, record_table, "
                    "record_key, new_values, prev_hash, hash) VALUES (1, :at, 'admin.ada', "
                    "'create', 'notification_channels', '1', :new, :zero, :zero)"
                ),
                {"at": "2026-12-01 10:00:00", "new": clear, "zero": "0" * 64},
            )
        engine.dispose()
        upgrade(url)
        engine = make_engine(url)
        with session_factory(engine)() as session:
            entry = session.scalars(select(AuditEntry)).one()
        assert entry.new_values == {"name": "ops", "secret": "[redacted]"}
        assert entry.outside_application is False
        assert verify_trail(engine, KEY).intact and seal_pending(engine, KEY) == 1
        engine.dispose()
    finally:
        if kind == "postgresql":
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
