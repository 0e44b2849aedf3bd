"""The /api/session routes: log in (a cookie naming a session kept on the server), who am I,
change my password, log out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import Field

from cloud.domain.access import effective_role
from cloud.entrypoints.api.auth import APP, COOKIE, client_address, throttled, unauthenticated
from cloud.entrypoints.api.contract import PUBLIC, Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.problems import Problem, invalid, parse_body
from cloud.entrypoints.api.representations import user_json
from cloud.service_layer.accounts import (
    LoginRefused,
    PasswordChangeRefused,
    change_password,
    log_in,
)
from cloud.service_layer.login_sessions import end_session
from cloud.service_layer.passwords import WeakPassword

bp = Blueprint("session", __name__, url_prefix="/api/session")


class Login(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class PasswordChange(Body):
    password: str = Field(min_length=1, max_length=256)  # the current one
    new_password: str = Field(min_length=1, max_length=256)


def cookie_secure() -> bool:
    """Secure cookies when the app is configured for HTTPS or the request came over it."""
    return bool(current_app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


@bp.post("")
@endpoint(PUBLIC, body=Login)
def login() -> Any:
    """Log in with username and password: the response sets the session cookie."""
    given = parse_body(Login)
    throttled("login", given.username)
    db = get_db()
    try:
        done = log_in(db, given.username, given.password, APP, client_address())
    except LoginRefused as exc:
        db.commit()  # the wrong password counts towards the lock-out
        raise unauthenticated(str(exc)) from exc
    db.commit()
    body = {**user_json(done.user), "must_change_password": done.user.must_change_password}
    response: Response = jsonify(body)
    response.set_cookie(
        COOKIE,
        done.secret,
        path="/api",
        httponly=True,
        secure=cookie_secure(),
        samesite="Strict",
    )
    return response


@bp.get("")
@endpoint("read")
def who_am_i() -> Any:
    """The calling user, how they authenticated (session or token) and the role they act in
    (a viewer's while a role change waits for a second admin)."""
    user = g.user
    return jsonify(
        {
            **user_json(user),
            "via": g.via,
            "acts_as": effective_role(user.role, user.pending_role),
            "must_change_password": user.must_change_password,
        }
    )


@bp.post("/password")
@endpoint("read", body=PasswordChange)
def change_password_route() -> Any:
    """Change your own password, giving the current one; your other sessions end."""
    given = parse_body(PasswordChange)
    throttled("password change", g.user.username)
    db = get_db()
    keep = g.login_session.id if g.login_session is not None else None
    try:
        change_password(db, g.user, given.password, given.new_password, keep, client_address())
    except WeakPassword as exc:
        raise invalid(422, str(exc), [{"field": "new_password", "message": str(exc)}]) from exc
    except PasswordChangeRefused as exc:
        db.commit()  # a wrong current password counts towards the lock-out
        raise Problem(403, "password-change-refused", "Password change refused", str(exc)) from exc
    db.commit()
    return "", 204


@bp.delete("")
@endpoint("read")
def logout() -> Any:
    """End the session: its cookie is refused from now on."""
    db = get_db()
    if g.login_session is not None:
        end_session(db, g.login_session, "logout")
        db.commit()
    response = Response(status=204)
    response.delete_cookie(COOKIE, path="/api")
    return response
