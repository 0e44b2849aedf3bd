"""`coldchain-cloud api-token` against PostgreSQL: create (by an admin, to a machine user,
with scopes and an expiry) prints the secret once and it authenticates; list never shows
secrets; revoke needs a reason and ends access; all audited. A person's token is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.audit import AuditEntry
from cloud.adapters.orm.people import ApiToken
from cloud.entrypoints.cli import main as cli
from cloud.service_layer.tokens import bearer_of

pytestmark = pytest.mark.integration


@pytest.fixture
def run(pg_url: str) -> Iterator[callable]:  # type: ignore[valid-type]
    runner = CliRunner()

    def invoke(*args: str, given: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=given, env={"COLDCHAIN_DATABASE_URL": pg_url})

    made = invoke(
        "create-user",
        "scanner-svc",
        "--full-name",
        "Dock scanners",
        "--role",
        "operator",
        "--machine",
        "--actor",
        "admin-anna",
    )
    assert made.exit_code == 0, made.output
    for username, role in (("anna", "admin"), ("otto", "operator")):
        made = invoke(
            "create-user",
            username,
            "--full-name",
            username.title(),
            "--role",
            role,
            "--password-stdin",
            given="long enough password\n",
        )
        assert made.exit_code == 0, made.output
    yield invoke


ISSUE = ("--issuer", "anna", "--scope", "scans", "--scope", "read")


def test_a_token_is_shown_once_listed_without_secret_and_revoked(run, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    created = run(
        "api-token", "create", "scanner-svc", "--name", "dock 3", *ISSUE, "--actor", "admin-anna"
    )
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("cct_") and len(secret) > 40
    engine = make_engine(pg_url)
    try:
        with session_factory(engine)() as db:
            bearer = bearer_of(db, secret)
            assert bearer is not None and bearer.user.username == "scanner-svc"
            assert bearer.scopes == {"read", "scans"}
            assert bearer.actor == f"scanner-svc via token {bearer.token.id} (issued by anna)"
        listed = run("api-token", "list")
        assert listed.exit_code == 0
        assert (
            "scanner-svc" in listed.output and "dock 3" in listed.output and "live" in listed.output
        )
        assert secret not in listed.output and secret[:10] in listed.output  # the hint only
        token_id = str(listed.output.splitlines()[1].split()[0])
        no_reason = run("api-token", "revoke", token_id)
        assert no_reason.exit_code == 2 and "--reason" in no_reason.output
        revoked = run(
            "api-token", "revoke", token_id, "--reason", "scanner lost", "--actor", "admin-anna"
        )
        assert revoked.exit_code == 0, revoked.output
        assert "revoked" in run("api-token", "list").output
        with session_factory(engine)() as db:
            assert bearer_of(db, secret) is None
            trail = db.scalars(
                select(AuditEntry)
                .where(AuditEntry.record_table == "api_tokens")
                .order_by(AuditEntry.id)
            ).all()
            assert [(e.action, e.actor, e.reason) for e in trail] == [
                ("create", "admin-anna", None),
                ("update", "admin-anna", "scanner lost"),
            ]
            assert trail[0].new_values["token_hash"] == "[redacted]"
            assert db.scalar(select(ApiToken.revoked_at)) is not None
    finally:
        engine.dispose()


def test_unknown_users_and_tokens_are_named(run) -> None:  # type: ignore[no-untyped-def]
    nobody = run("api-token", "create", "nobody", "--name", "x", *ISSUE)
    assert nobody.exit_code == 1 and "user 'nobody' does not exist" in nobody.output
    unnamed = run("api-token", "create", "scanner-svc", "--name", "  ", *ISSUE)
    assert unnamed.exit_code == 1 and "needs a name" in unnamed.output
    person = run("api-token", "create", "otto", "--name", "otto's scripts", *ISSUE)
    assert person.exit_code == 1 and "otto is a person" in person.output
    not_admin = run(
        "api-token", "create", "scanner-svc", "--name", "x", "--issuer", "otto", "--scope", "read"
    )
    assert not_admin.exit_code == 1 and "only admins issue tokens" in not_admin.output
    unscoped = run("api-token", "create", "scanner-svc", "--name", "x", "--issuer", "anna")
    assert unscoped.exit_code == 2 and "--scope" in unscoped.output
    too_long = run("api-token", "create", "scanner-svc", "--name", "x", *ISSUE, "--days", "400")
    assert too_long.exit_code == 2 and "--days" in too_long.output
    missing = run("api-token", "revoke", "999", "--reason", "cleanup")
    assert missing.exit_code == 1 and "token 999 does not exist" in missing.output
