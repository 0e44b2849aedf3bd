"""Who is calling (a bearer token or a login session's cookie), whether their role (and a
token's scopes) allow the route's action, and the actor and reason every change is recorded
with. The /api/session routes are in session.py."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, current_app, g, request

from cloud.adapters.orm.people import User
from cloud.adapters.throttle import Throttle
from cloud.domain.access import ACTIONS, effective_role
from cloud.entrypoints.api.contract import PUBLIC, allows, contract_of, token_allows
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.problems import Problem, invalid
from cloud.service_layer.login_sessions import Timeouts, live_session, signed_before
from cloud.service_layer.signatures import TOKEN_SIGNING
from cloud.service_layer.tokens import Bearer, bearer_of

COOKIE = "coldchain_api_session"  # the control room's cookie has another name and path
APP = "api"
THROTTLE = "coldchain.throttle"
# A user whose password an admin reset may only do this until they choose a new one.
WHILE_PASSWORD_MUST_CHANGE = {"session.change_password_route", "session.who_am_i", "session.logout"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", "Authentication required", detail)


def timeouts() -> Timeouts:
    config = current_app.config
    return Timeouts(
        idle=timedelta(seconds=config["SESSION_IDLE_TIMEOUT_S"]),
        absolute=timedelta(seconds=config["SESSION_ABSOLUTE_TIMEOUT_S"]),
    )


def client_address() -> str:
    return request.remote_addr or "unknown"


def identify() -> tuple[User | None, Bearer | None]:
    """The calling user and the token they came with (None: a login session or nobody); a
    bad token is refused outright."""
    db = get_db()
    g.login_session = None
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
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None, None
    row = live_session(db, cookie, APP, timeouts())
    user = db.get(User, row.user_id) if row is not None else None
    db.commit()  # the session's last-seen time, or its end by a timeout
    if row is None or user is None or not user.active or user.kind != "person":
        g.forget_cookie = True
        return None, None
    g.login_session = row
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
    if user.must_change_password and request.endpoint not in WHILE_PASSWORD_MUST_CHANGE:
        raise Problem(
            403,
            "password-change-required",
            "Password change required",
            "an admin reset your password: choose a new one (POST /api/session/password) first",
        )
    _check(contract.action, user, bearer)
    db = get_db()
    db.info["actor"] = user.username if bearer is None else bearer.actor
    if bearer is not None:
        db.info["via"] = "token"  # signatures are refused over tokens
    if g.login_session is not None:
        db.info["login_session"] = g.login_session.id
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


def throttled(action: str, account: str) -> None:
    """Refuse (429) a password attempt beyond the rate limits of its client or account."""
    wait = current_app.extensions[THROTTLE].attempt(action, client_address(), account)
    if wait is not None:
        raise Problem(
            429,
            "too-many-attempts",
            "Too many attempts",
            f"too many {action} attempts from this address or for this account: "
            f"try again in {wait:.0f} s",
            retry_after=wait,
        )


def before_signing(username: str | None) -> None:
    """Before a signature: the rate limit, and the user ID if the session has not signed yet
    (21 CFR 11.200(a)(1): the first signing of a session needs both components)."""
    user: User = g.user
    throttled("signing", user.username)
    db = get_db()
    if username is None and not signed_before(db, db.info.get("login_session"), user.id):
        raise invalid(
            422,
            "the first signing in a session needs your user ID (username) as well as your "
            "password; later ones in the same session need the password only",
            [{"field": "username", "message": "required for the first signing in a session"}],
        )


def init_app(app: Flask) -> None:
    app.extensions[THROTTLE] = Throttle(
        app.config["LOGIN_RATE_LIMIT_PER_CLIENT"], app.config["LOGIN_RATE_LIMIT_PER_ACCOUNT"]
    )
    app.before_request(authorise)

    @app.after_request
    def _headers(response: Response) -> Response:
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="coldchain"'
        if response.status_code == 429:
            response.headers["Retry-After"] = str(int((response.get_json() or {})["retry_after"]))
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if g.get("forget_cookie"):
            response.delete_cookie(COOKIE, path="/api")
        return response
