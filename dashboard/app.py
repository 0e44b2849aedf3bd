"""The Dash control room: a thin shell around the pages in dashboard/pages/."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import dash
from dash import Dash, dcc, html
from flask import Response, jsonify, redirect, request

from cloud import bootstrap
from cloud.domain.holds import parse_two_person_reasons
from cloud.service_layer.login_sessions import Timeouts
from cloud.views.accounts import Accounts
from dashboard import services
from dashboard.auth import current_user, log_out, set_cookie

HERE = Path(__file__).parent
log = logging.getLogger(__name__)
# Callbacks anyone may run: the login form itself; and what a user whose password an admin
# reset may run: the form to choose a new one.
PUBLIC_OUTPUTS = ("login-",)
PASSWORD_OUTPUTS = ("password-",)
# Dash renders with inline scripts and evaluates callbacks' code: 'unsafe-inline' and
# 'unsafe-eval' for scripts, inline styles; everything else from this site only, and no
# page may frame the control room (clickjacking of its actions).
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _seconds(env: str, default: float) -> float:
    return float(os.environ.get(env, default))


def create_app(
    database_url: str,
    refresh_ms: int = 3000,
    secret_key: str | None = None,
    *,
    timeouts: Timeouts | None = None,
    login_limits: tuple[str, str] | None = None,
) -> Dash:
    """A control room on the database at `database_url`."""
    room = bootstrap.control_room(database_url)
    timeouts = timeouts or Timeouts(
        idle=timedelta(seconds=_seconds("COLDCHAIN_SESSION_IDLE_S", 15 * 60)),
        absolute=timedelta(seconds=_seconds("COLDCHAIN_SESSION_MAX_S", 12 * 3600)),
    )
    accounts = (
        Accounts(room.sessions, timeouts, login_limits)
        if login_limits
        else Accounts(room.sessions, timeouts)
    )
    services.configure(
        room, accounts, parse_two_person_reasons(os.environ.get("COLDCHAIN_TWO_PERSON_REASONS"))
    )
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        title="Cold-chain control room",
        update_title=None,  # type: ignore[arg-type]  # documented: None leaves the title alone
        suppress_callback_exceptions=True,
    )
    server = app.server
    # Logins are sessions in the database; the key signs nothing they depend on.
    key = secret_key or os.environ.get("COLDCHAIN_SECRET_KEY") or secrets.token_hex(32)
    server.config.update(
        SECRET_KEY=key,
        SESSION_COOKIE_SECURE=os.environ.get("COLDCHAIN_HTTPS", "") not in ("", "0", "false"),
        COLDCHAIN_REFRESH_MS=refresh_ms,
    )
    server.before_request(_refuse_anonymous_callbacks)
    server.after_request(set_cookie)
    server.after_request(_security_headers)

    @server.get("/logout")
    def logout() -> Any:
        log_out()
        return redirect("/login")

    app.layout = shell
    return app


def _refuse_anonymous_callbacks() -> Any:
    """Defence in depth: only the login form's callbacks run without a logged-in user."""
    if not request.path.endswith("/_dash-update-component"):
        return None
    body = request.get_json(silent=True) or {}
    output = str(body.get("output", "")).lstrip(".")
    if output.startswith(PUBLIC_OUTPUTS) or output.startswith("_pages"):
        return None
    user = current_user()
    if user is None:
        return jsonify({"error": "log in first"}), 401
    if user.must_change_password and not output.startswith(PASSWORD_OUTPUTS):
        return jsonify({"error": "choose a new password first"}), 403
    return None


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def shell() -> html.Div:
    """The page frame: navigation, who is logged in, and the page itself."""
    user = current_user()
    pages = [p for p in dash.page_registry.values() if p.get("nav", True)]
    nav = (
        [
            dcc.Link(page["name"], href=page["relative_path"], className="navlink")
            for page in sorted(pages, key=lambda p: p.get("order") or 0)
        ]
        if user
        else []
    )
    who = (
        [
            html.Span(
                [html.Strong(user.full_name), f" \u00b7 {user.role}"],
                className="who",
                id="shell-user",
            ),
            dcc.Link("Password", href="/password", className="navlink"),
            html.A("Log out", href="/logout", className="navlink logout"),
        ]
        if user
        else []
    )
    return html.Div(
        className="shell",
        children=[
            html.Header(
                className="topbar",
                children=[
                    html.Span("\u2744 Cold-chain control room", className="brand"),
                    html.Nav(nav, className="nav"),
                    html.Div(who, className="session"),
                ],
            ),
            html.Main(dash.page_container, className="content"),
        ],
    )
