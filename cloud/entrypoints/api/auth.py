"""Who is calling (a bearer token or a session cookie), whether their role (and a token's
scopes) allow the route's action, and the actor and reason every change is recorded with.
Also the /api/session routes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request, session

from cloud.adapters.orm.people import User
from cloud.domain.access import ACTIONS, effective_role
from cloud.entrypoints.api.contract import PUBLIC, Body, allows, contract_of, endpoint, token_allows
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.problems import Problem, parse_body
from cloud.entrypoints.api.representations import user_json
from cloud.service_layer.signatures import TOKEN_SIGNING, check_password, user_named
from cloud.service_layer.tokens import Bearer, bearer_of

bp = Blueprint("session", __name__, url_prefix="/api/session")


def unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", "Authentication required", detail)


def identify() -> tuple[User | None, Bearer | None]:
    """The calling user and the token they came with (None: a session or nobody); a bad
    token is refused outright."""
    db = get_db()
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise unauthenticated("use Authorization: Bearer <token>")
        bearer = bearer_of(db, secret.strip())
        if bearer is None:
            raise unauthenticated(
                "the token is unknown, revoked or expired, or its user is inactive"
            )
        return bearer.user, bearer
    user_id = session.get("user_id")
    if user_id is None:
        return None, None
    user = db.get(User, user_id)
    if user is None or not user.active or user.kind != "person":
        session.clear()
        return None, None
    return user, None


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
    user, bearer = identify()
    g.user, g.via = user, ("token" if bearer is not None else "session")
    if contract.action == PUBLIC:
        return
    if user is None:
        raise unauthenticated("log in (POST /api/session) or send a bearer token")
    _check(contract.action, user, bearer)
    db = get_db()
    db.info["actor"] = user.username if bearer is None else bearer.actor
    if bearer is not None:
        db.info["via"] = "token"  # signatures are refused over tokens
    reason = reason_given()
    if reason is not None:
        db.info["reason"] = reason


def _check(action: str, user: User, bearer: Bearer | None) -> None:
    """403 unless the user's role (and the token's scopes) allow the route's action."""
    role = effective_role(user.role, user.pending_role)
    where = f"{request.method} {request.path}"
    if bearer is not None and ACTIONS[action].signed:
        raise Problem(403, "signature-refused", "Signature refused", f"{where}: {TOKEN_SIGNING}")
    if not allows(role, action):
        roles = ", ".join(sorted(ACTIONS[action].roles))
        pending = (
            f" until a second admin confirms the role {user.pending_role}"
            if user.pending_role
            else ""
        )
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            f"{where} ({action}) is for {roles}; {user.username} acts as {role}{pending}",
        )
    if bearer is not None and not token_allows(bearer.scopes, action):
        scope = ACTIONS[action].scope
        need = f"the scope {scope}" if scope else "a person logged in: no token may"
        raise Problem(
            403,
            "scope-missing",
            "Token scope missing",
            f"{where} ({action}) needs {need}; token {bearer.token.id} has "
            f"{', '.join(sorted(bearer.scopes)) or 'no scopes'}",
        )


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
    if (
        user is None
        or not user.active
        or user.kind != "person"  # a machine user acts through tokens only
        or not check_password(user, given.password)
    ):
        raise unauthenticated(
            "wrong username or password, or the account is inactive or a machine's"
        )
    session.clear()
    session["user_id"] = user.id
    return jsonify(user_json(user))


@bp.get("")
@endpoint("read")
def who_am_i() -> Any:
    """The calling user and how they authenticated (session or token)."""
    acts_as = effective_role(g.user.role, g.user.pending_role)
    return jsonify({**user_json(g.user), "via": g.via, "acts_as": acts_as})


@bp.delete("")
@endpoint("read")
def logout() -> Any:
    """End the session."""
    session.clear()
    return "", 204
