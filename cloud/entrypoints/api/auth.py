"""Who is calling (a bearer token or a session cookie), whether their role allows the route,
and the actor and reason every change is recorded with. Also the /api/session routes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request, session

from cloud.adapters.orm.people import User
from cloud.entrypoints.api.contract import PUBLIC, Body, allows, contract_of, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.problems import Problem, parse_body
from cloud.entrypoints.api.representations import user_json
from cloud.service_layer.signatures import check_password, user_named
from cloud.service_layer.tokens import user_of_token

bp = Blueprint("session", __name__, url_prefix="/api/session")


def unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", "Authentication required", detail)


def identify() -> tuple[User | None, str | None]:
    """The calling user and how they authenticated; a bad token is refused outright."""
    db = get_db()
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise unauthenticated("use Authorization: Bearer <token>")
        user = user_of_token(db, secret.strip())
        if user is None:
            raise unauthenticated("the token is unknown, revoked, or its user is inactive")
        return user, "token"
    user_id = session.get("user_id")
    if user_id is None:
        return None, None
    user = db.get(User, user_id)
    if user is None or not user.active:
        session.clear()
        return None, None
    return user, "session"


def reason_given() -> str | None:
    """The reason for the change: the body's `reason` field, else the X-Reason header."""
    body = request.get_json(silent=True) if request.is_json else None
    reason = body.get("reason") if isinstance(body, dict) else None
    reason = reason if isinstance(reason, str) and reason.strip() else None
    return reason or request.headers.get("X-Reason") or None


def authorise() -> None:
    """Before every request: authenticate, check the route's role, set actor and reason."""
    if request.endpoint is None:
        return  # no route: the 404 or 405 follows
    contract = contract_of(current_app.view_functions.get(request.endpoint))
    if contract is None:  # fail closed: a route nobody declared is open to nobody
        raise Problem(403, "forbidden", "Forbidden", "this route declares no access rule")
    user, via = identify()
    g.user, g.via = user, via
    if contract.role == PUBLIC:
        return
    if user is None:
        raise unauthenticated("log in (POST /api/session) or send a bearer token")
    if not allows(user.role, contract.role):
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            f"{request.method} {request.path} needs the role {contract.role} or above; "
            f"{user.username} is {user.role}",
        )
    db = get_db()
    db.info["actor"] = user.username
    reason = reason_given()
    if reason is not None:
        db.info["reason"] = reason


def init_app(app: Flask) -> None:
    app.before_request(authorise)

    @app.after_request
    def _challenge(response: Response) -> Response:
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="coldchain"'
        return response


class Login(Body):
    username: str
    password: str


@bp.post("")
@endpoint(PUBLIC, body=Login)
def login() -> Any:
    """Log in with username and password: the response sets the session cookie."""
    given = parse_body(Login)
    db = get_db()
    user = user_named(db, given.username)
    if user is None or not user.active or not check_password(user, given.password):
        raise unauthenticated("wrong username or password, or the account is inactive")
    session.clear()
    session["user_id"] = user.id
    return jsonify(user_json(user))


@bp.get("")
@endpoint("viewer")
def who_am_i() -> Any:
    """The calling user and how they authenticated (session or token)."""
    return jsonify({**user_json(g.user), "via": g.via})


@bp.delete("")
@endpoint("viewer")
def logout() -> Any:
    """End the session."""
    session.clear()
    return "", 204
