"""Accounts in the control room (the real Flask server of the Dash app, its callbacks posted
as the browser posts them): no open redirect after login, security headers, its own session
cookie, logout and idle timeout, lock-out, a forced password change; and the demo seeder,
which refuses any database the demo did not create."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.people import User
from cloud.entrypoints.api import create_app as create_api
from cloud.entrypoints.api.database import EXTENSION
from cloud.entrypoints.demo_seed import NotADemoDatabase, mark_as_demo
from cloud.entrypoints.demo_seed import seed as seed_demo
from cloud.service_layer.accounts import reset_password
from cloud.service_layer.login_sessions import Timeouts
from dashboard.app import create_app
from dashboard.auth import COOKIE
from tests.integration.test_dashboard import PASSWORD, call, overview, seed


def room(url: str, **kw: Any) -> FlaskClient:
    return create_app(url, secret_key="test", **kw).server.test_client()


def log_in(client: FlaskClient, username: str, password: str, search: str = "") -> Any:
    response = call(
        client,
        [("login-location", "href"), ("login-message", "children")],
        [("login-submit", "n_clicks", 1), ("login-password", "n_submit", 0)],
        [
            ("login-username", "value", username),
            ("login-password", "value", password),
            ("login-location", "search", search),
        ],
        "login-submit.n_clicks",
    )
    return response.get_json()["response"]


@pytest.mark.parametrize(
    ("search", "destination"),
    [
        ("?next=/alerts", "/alerts"),
        ("?next=/zone%3Fzone%3Dcold", "/zone?zone=cold"),
        ("?next=//evil.example", "/"),  # before: redirected off-site
        ("?next=/%5Cevil.example", "/"),
        ("?next=https://evil.example/", "/"),
        ("?next=javascript:alert(1)", "/"),
        ("?next=/%09/evil.example", "/"),
    ],
)
def test_login_redirects_only_to_a_local_path(sqlite_url: str, search: str, destination: str):
    seed(sqlite_url)
    response = log_in(room(sqlite_url), "qa", PASSWORD, search)
    assert response["login-location"]["href"] == destination


def test_security_headers_forbid_framing_and_the_page_still_loads(sqlite_url: str):
    seed(sqlite_url)
    page = room(sqlite_url).get("/")
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert page.headers["X-Frame-Options"] == "DENY"


def login_post(client: FlaskClient, base_url: str = "http://localhost") -> Any:
    body = {
        "output": "..login-location.href...login-message.children..",
        "outputs": [
            {"id": "login-location", "property": "href"},
            {"id": "login-message", "property": "children"},
        ],
        "inputs": [
            {"id": "login-submit", "property": "n_clicks", "value": 1},
            {"id": "login-password", "property": "n_submit", "value": 0},
        ],
        "state": [
            {"id": "login-username", "property": "value", "value": "qa"},
            {"id": "login-password", "property": "value", "value": PASSWORD},
            {"id": "login-location", "property": "search", "value": ""},
        ],
        "changedPropIds": ["login-submit.n_clicks"],
    }
    return client.post("/_dash-update-component", json=body, base_url=base_url)


def test_session_cookie_flags_and_its_own_name(sqlite_url: str):
    seed(sqlite_url)
    client = room(sqlite_url)
    plain = login_post(client).headers["Set-Cookie"]
    assert plain.startswith(f"{COOKIE}=") and "HttpOnly" in plain and "SameSite=Lax" in plain
    assert "Secure" not in plain and "Expires" not in plain
    over_https = login_post(client, "https://control-room.example").headers["Set-Cookie"]
    assert "Secure" in over_https


def test_the_api_session_cookie_does_not_open_the_control_room(sqlite_url: str):
    seed(sqlite_url)
    api_app = create_api(sqlite_url, {"TESTING": True})
    api = api_app.test_client()
    assert (
        api.post("/api/session", json={"username": "qa", "password": PASSWORD}).status_code == 200
    )
    secret = api.get_cookie("coldchain_api_session", path="/api").value
    api_app.extensions[EXTENSION].kw["bind"].dispose()
    client = room(sqlite_url)
    client.set_cookie(COOKIE, secret)
    assert overview(client, ["cold"], ["gw1"], None).status_code == 401


def test_logout_revokes_the_session_cookie(sqlite_url: str):
    seed(sqlite_url)
    client = room(sqlite_url)
    log_in(client, "viewer", PASSWORD)
    secret = client.get_cookie(COOKIE).value
    client.get("/logout")
    replay = room(sqlite_url)
    replay.set_cookie(COOKIE, secret)
    assert overview(replay, ["cold"], ["gw1"], None).status_code == 401


def test_idle_timeout_and_refreshes_do_not_keep_a_session_alive(sqlite_url: str):
    seed(sqlite_url)
    client = room(sqlite_url, timeouts=Timeouts(idle=timedelta(seconds=1)))
    log_in(client, "viewer", PASSWORD)
    started = time.monotonic()
    for _ in range(3):  # the page's interval refresh is not the user's doing
        assert overview(client, ["cold"], ["gw1"], None).status_code == 200
        time.sleep(0.25)
    time.sleep(max(0.0, 1.2 - (time.monotonic() - started)))
    assert overview(client, ["cold"], ["gw1"], None).status_code == 401


def test_five_wrong_passwords_lock_the_control_room_login(sqlite_url: str):
    seed(sqlite_url)
    client = room(sqlite_url)
    for n in range(5):
        assert log_in(client, "qa", f"wrong {n}")["login-message"]["children"].startswith("Wrong")
    assert "locked" in log_in(client, "qa", PASSWORD)["login-message"]["children"]
    assert overview(client, ["cold"], ["gw1"], None).status_code == 401


def test_after_a_reset_the_user_can_only_change_the_password(sqlite_url: str):
    seed(sqlite_url)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as session:
        session.info["actor"] = "admin"
        viewer = session.scalars(select(User).where(User.username == "viewer")).one()
        temporary = reset_password(session, viewer, "forgotten")
        session.commit()
    engine.dispose()
    client = room(sqlite_url)
    assert log_in(client, "viewer", temporary)["login-location"]["href"] == "/password"
    assert overview(client, ["cold"], ["gw1"], None).status_code == 403
    changed = call(
        client,
        [("password-location", "href"), ("password-message", "children")],
        [("password-submit", "n_clicks", 1)],
        [
            ("password-current", "value", temporary),
            ("password-new", "value", "walk-in freezer 2026"),
            ("password-again", "value", "walk-in freezer 2026"),
        ],
        "password-submit.n_clicks",
    )
    assert changed.get_json()["response"]["password-location"]["href"] == "/"
    assert overview(client, ["cold"], ["gw1"], None).status_code == 200


def test_demo_seeder_refuses_a_database_it_did_not_create(sqlite_url: str):
    # Before: the seeder created coldchain-demo accounts on any empty database.
    with pytest.raises(NotADemoDatabase, match="not a demo database"):
        seed_demo(sqlite_url, history=False)
    seed(sqlite_url)  # a database with users of its own
    with pytest.raises(NotADemoDatabase, match="has 2 users already"):
        mark_as_demo(sqlite_url)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as session:
        assert session.scalars(select(User.username).order_by(User.username)).all() == [
            "qa",
            "viewer",
        ]
    engine.dispose()
