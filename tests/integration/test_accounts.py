"""Accounts on PostgreSQL through the REST API: lock-out and unlock, login timing, password
change and reset, the password policy, argon2id rehash, login sessions (cookie flags, logout,
idle timeout), security headers, rate limits, and the first signing of a session."""

from __future__ import annotations

import hashlib
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cloud.adapters.orm.accounts import AccountLock, LoginSession, PasswordFailure
from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.audit import AuditEntry
from cloud.adapters.orm.people import User
from cloud.entrypoints.api import create_app
from cloud.entrypoints.api.auth import COOKIE
from cloud.entrypoints.api.database import EXTENSION
from tests.integration.api_support import PASSWORD, Api, running_api

NEW_PASSWORD = "frost-line pallet 2026"


APPS: list[Flask] = []


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        yield running
        while APPS:
            APPS.pop().extensions[EXTENSION].kw["bind"].dispose()


def login(c: FlaskClient, username: str, password: str, **kw: object) -> int:
    return c.post(
        "/api/session", json={"username": username, "password": password}, **kw
    ).status_code


def browser(api: Api) -> FlaskClient:
    """A client that keeps its cookies, as a browser does (api.client keeps none)."""
    return api.app.test_client()


def _held(api: Api, lot: str = "L1") -> str:
    """QA puts the lot's batch on hold; the URL of the hold's disposition (a signed release)."""
    batches = api.client.get("/api/batches", headers=api.as_("qa")).get_json()["items"]
    batch_id = next(b["id"] for b in batches if b["lot"] == lot)
    put = api.client.post(
        f"/api/batches/{batch_id}/status",
        json={"status": "held", "reason": "probe check"},
        headers=api.as_("qa"),
    )
    assert put.status_code == 200, put.get_json()
    return f"/api/holds/{put.get_json()['hold_id']}/disposition"


def fresh_client(api: Api, **config: object) -> FlaskClient:
    """Another app on the same database (another process, as far as sessions go)."""
    app = create_app(api.app.config["DATABASE_URL"], {"TESTING": True, **config})
    APPS.append(app)
    return app.test_client()


def test_five_wrong_passwords_lock_the_account_until_an_admin_unlocks_it(api: Api):
    c = api.client
    # Before: 20 wrong passwords in 1.5 s, then the right one worked.
    statuses = [login(c, "qa", f"guess-{n}") for n in range(6)]
    assert statuses == [401] * 6
    assert login(c, "qa", PASSWORD) == 401  # locked: the right password no longer works
    assert login(fresh_client(api), "qa", PASSWORD) == 401  # every process sees the lock
    api.db.expire_all()
    qa = api.db.scalars(select(User).where(User.username == "qa")).one()
    lock = api.db.scalars(select(AccountLock).where(AccountLock.user_id == qa.id)).one()
    assert (lock.failures, lock.unlocked_at) == (5, None)
    alert = api.db.scalars(select(Alert).where(Alert.kind == "account_locked")).one()
    assert (
        alert.subject_kind == "user" and "Account qa locked after 5 wrong passwords" in alert.title
    )

    admin = api.as_("admin")
    listed = c.get("/api/users", headers=admin).get_json()["items"]
    assert [u["locked"] for u in listed if u["username"] == "qa"] == [True]
    no_reason = c.post("/api/users/qa/unlock", json={}, headers=admin)
    assert no_reason.status_code == 422 and no_reason.get_json()["errors"][0]["field"] == "reason"
    not_admin = api.as_("operator")  # qa is locked: another non-admin tries
    assert (
        c.post("/api/users/qa/unlock", json={"reason": "x"}, headers=not_admin).status_code == 403
    )
    unlocked = c.post(
        "/api/users/qa/unlock", json={"reason": "called the help desk"}, headers=admin
    )
    assert unlocked.status_code == 200 and unlocked.get_json()["locked"] is False
    assert login(c, "qa", PASSWORD) == 200
    again = c.post("/api/users/qa/unlock", json={"reason": "twice"}, headers=admin)
    assert again.status_code == 409
    api.db.expire_all()
    entries = api.db.scalars(
        select(AuditEntry).where(AuditEntry.record_table == "account_locks")
    ).all()
    assert [(e.action, e.actor, e.reason) for e in entries] == [
        ("create", "account-guard", None),
        ("update", "admin", "called the help desk"),
    ]


def test_login_takes_as_long_for_an_unknown_user_as_for_a_known_one(api: Api):
    c = api.client
    app = fresh_client(api, LOGIN_RATE_LIMIT_PER_CLIENT="1000/minute")
    known, unknown = [], []
    for n in range(8):
        for name, into in (("viewer", known), (f"nobody-{n}", unknown)):
            started = time.perf_counter()
            assert login(app, name, f"wrong password {n}") == 401
            into.append(time.perf_counter() - started)
        if n == 3:  # stay under the lock-out: an admin unlocks between rounds
            c.post(
                "/api/users/viewer/unlock", json={"reason": "timing test"}, headers=api.as_("admin")
            )
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 <= ratio <= 2.0, (known, unknown)  # before: 6 ms against 56 ms


def test_user_changes_their_password_and_other_sessions_end(api: Api):
    c, other = browser(api), fresh_client(api)
    assert login(c, "operator", PASSWORD) == 200
    assert login(other, "operator", PASSWORD) == 200
    change = {"password": PASSWORD, "new_password": NEW_PASSWORD}
    wrong = c.post("/api/session/password", json={**change, "password": "not it at all"})
    assert wrong.status_code == 403
    weak = c.post("/api/session/password", json={**change, "new_password": "short"})
    assert weak.status_code == 422 and weak.get_json()["errors"][0]["field"] == "new_password"
    common = c.post("/api/session/password", json={**change, "new_password": "password1234"})
    assert common.status_code == 422 and "commonly used" in common.get_json()["detail"]
    assert c.post("/api/session/password", json=change).status_code == 204
    assert c.get("/api/session").status_code == 200  # this session goes on
    assert other.get("/api/session").status_code == 401  # the other one ended
    assert login(other, "operator", PASSWORD) == 401
    assert login(other, "operator", NEW_PASSWORD) == 200


def test_admin_reset_forces_a_change_at_next_login(api: Api):
    c = api.client
    assert login(c, "viewer", PASSWORD) == 200
    reset = c.post(
        "/api/users/viewer/password", json={"reason": "forgotten"}, headers=api.as_("admin")
    )
    assert reset.status_code == 200
    temporary = reset.get_json()["password"]
    assert reset.get_json()["must_change_password"] is True and len(temporary) >= 12
    assert c.get("/api/session").status_code == 401  # the reset ended the user's sessions
    user = fresh_client(api)
    assert login(user, "viewer", PASSWORD) == 401
    assert login(user, "viewer", temporary) == 200
    blocked = user.get("/api/zones")
    assert blocked.status_code == 403 and blocked.get_json()["type"].endswith(
        "password-change-required"
    )
    change = {"password": temporary, "new_password": NEW_PASSWORD}
    assert user.post("/api/session/password", json=change).status_code == 204
    assert user.get("/api/zones").status_code == 200


def test_weak_passwords_are_refused_for_new_users(api: Api):
    admin = api.as_("admin")
    new = {"username": "j.smith", "full_name": "Jane Smith", "role": "viewer"}
    for weak, says in (
        ("eleven-char", "at least 12"),
        ("qwertyuiop123", "commonly used"),
        ("j.smith-cold-2026", "username"),
    ):
        refused = api.client.post("/api/users", json={**new, "password": weak}, headers=admin)
        assert refused.status_code == 422 and says in refused.get_json()["detail"], weak
    ok = api.client.post("/api/users", json={**new, "password": NEW_PASSWORD}, headers=admin)
    assert ok.status_code == 201


def test_an_old_scrypt_hash_verifies_once_and_is_rehashed_to_argon2id(api: Api):
    salt = secrets.token_hex(16)
    digest = hashlib.scrypt(
        PASSWORD.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1, dklen=32
    )
    api.db.info.update(actor="test-setup", reason="a hash from before argon2id")
    qa = api.db.scalars(select(User).where(User.username == "qa")).one()
    qa.password_salt, qa.password_hash = salt, f"scrypt$16384$8$1${digest.hex()}"
    api.db.commit()
    assert login(api.client, "qa", PASSWORD) == 200
    api.db.expire_all()
    assert qa.password_hash.startswith("$argon2id$")
    assert login(fresh_client(api), "qa", PASSWORD) == 200


def test_session_cookie_is_secure_over_https_and_names_a_server_side_session(api: Api):
    c = api.client
    over_https = c.post(
        "/api/session", json={"username": "qa", "password": PASSWORD}, base_url="https://cc.example"
    )
    cookie = over_https.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Path=/api" in cookie and "Expires" not in cookie
    secret = cookie.split(";")[0].split("=", 1)[1]
    api.db.expire_all()
    stored = api.db.scalars(select(LoginSession)).one()
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest() != secret
    plain = c.post("/api/session", json={"username": "qa", "password": PASSWORD})
    assert "Secure" not in plain.headers["Set-Cookie"]
    configured = fresh_client(api, SESSION_COOKIE_SECURE=True)
    behind_proxy = configured.post("/api/session", json={"username": "qa", "password": PASSWORD})
    assert "Secure" in behind_proxy.headers["Set-Cookie"]


def test_logout_revokes_the_session(api: Api):
    c = browser(api)
    assert login(c, "qa", PASSWORD) == 200
    secret = c.get_cookie(COOKIE, path="/api").value
    assert c.delete("/api/session").status_code == 204
    replay = fresh_client(api)
    replay.set_cookie(COOKIE, secret, path="/api")
    assert replay.get("/api/session").status_code == 401  # the old cookie is refused


def test_idle_and_absolute_timeouts_end_a_session(api: Api):
    short = fresh_client(api, SESSION_IDLE_TIMEOUT_S=1.0, SESSION_ABSOLUTE_TIMEOUT_S=3.0)
    assert login(short, "qa", PASSWORD) == 200
    assert short.get("/api/session").status_code == 200
    time.sleep(1.2)
    assert short.get("/api/session").status_code == 401
    api.db.expire_all()
    assert api.db.scalars(select(LoginSession.end_reason)).one() == "idle timeout"
    assert login(short, "qa", PASSWORD) == 200
    for _ in range(4):  # active all along, but 3 s is the most a session lives
        time.sleep(0.8)
        short.get("/api/session")
    assert short.get("/api/session").status_code == 401


def test_security_headers_forbid_framing(api: Api):
    response = api.client.get("/api/session")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_login_attempts_are_rate_limited(api: Api):
    c = fresh_client(api, LOGIN_RATE_LIMIT_PER_ACCOUNT="3/minute")
    assert [login(c, "nobody", f"x{n}") for n in range(3)] == [401] * 3
    limited = c.post("/api/session", json={"username": "nobody", "password": "x"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert login(c, "qa", PASSWORD) == 200  # another account is not held up


def test_first_signing_in_a_session_needs_the_user_id(api: Api):
    c = browser(api)
    url = _held(api)
    assert login(c, "qa", PASSWORD) == 200
    release = {"decision": "release", "reason": "within budget", "password": PASSWORD}
    first = c.post(url, json=release)
    assert first.status_code == 422 and first.get_json()["errors"][0]["field"] == "username"
    signed = c.post(url, json={**release, "username": "qa"})
    assert signed.status_code == 200, signed.get_json()
    # Later signings of the same continuous session need the password only.
    again = c.post(_held(api), json={**release, "reason": "checked again"})
    assert again.status_code == 200, again.get_json()
    # Another session (another login) signs for the first time: both components again.
    other = api.client.post(_held(api), json=release, headers=api.as_("qa"))
    assert other.status_code == 422 and other.get_json()["errors"][0]["field"] == "username"


def test_wrong_signature_passwords_count_towards_the_lock_out(api: Api):
    c = browser(api)
    url = _held(api)
    assert login(c, "qa", PASSWORD) == 200
    release = {"decision": "release", "reason": "ok", "username": "qa"}
    for n in range(5):
        wrong = c.post(url, json={**release, "password": f"wrong-{n}"})
        assert wrong.status_code == 403, wrong.get_json()
    locked = c.post(url, json={**release, "password": PASSWORD})
    assert locked.status_code == 403 and "locked" in locked.get_json()["detail"]
    api.db.expire_all()
    uses = api.db.scalars(select(PasswordFailure.used_for)).all()
    assert uses == ["signature"] * 5
    assert login(fresh_client(api), "qa", PASSWORD) == 401


def test_the_cli_unlocks_an_account_when_no_admin_can(api: Api):
    for n in range(5):
        login(api.client, "admin", f"wrong-{n}")
    assert login(api.client, "admin", PASSWORD) == 401
    url = ("--database-url", api.app.config["DATABASE_URL"])

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "cloud.entrypoints.cli", "unlock-user", *args, *url]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert "Missing option '--reason'" in cli("admin").stderr
    done = cli("admin", "--reason", "the only admin locked out", "--actor", "ops.oli")
    assert done.returncode == 0 and done.stdout.strip() == "unlocked admin", done.stderr
    assert "is not locked" in cli("admin", "--reason", "again").stderr
    assert login(api.client, "admin", PASSWORD) == 200
