"""The Dash control room: a thin shell around the pages in dashboard/pages/."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

import dash
from dash import Dash, dcc, html
from flask import jsonify, redirect, request, session

from cloud import bootstrap
from cloud.domain.holds import parse_two_person_reasons
from dashboard import services
from dashboard.auth import current_user

HERE = Path(__file__).parent
log = logging.getLogger(__name__)
# Callbacks anyone may run: the login form itself.
PUBLIC_OUTPUTS = ("login-",)


def create_app(database_url: str, refresh_ms: int = 3000, secret_key: str | None = None) -> Dash:
    """A control room on the database at `database_url`."""
    services.configure(
        bootstrap.control_room(database_url),
        parse_two_person_reasons(os.environ.get("COLDCHAIN_TWO_PERSON_REASONS")),
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
    key = secret_key or os.environ.get("COLDCHAIN_SECRET_KEY")
    if not key:
        log.warning("COLDCHAIN_SECRET_KEY is not set: logins end when the process stops")
        key = secrets.token_hex(32)
    server.config.update(
        SECRET_KEY=key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        COLDCHAIN_REFRESH_MS=refresh_ms,
    )
    server.before_request(_refuse_anonymous_callbacks)

    @server.get("/logout")
    def logout() -> Any:
        session.clear()
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
    if current_user() is None:
        return jsonify({"error": "log in first"}), 401
    return None


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
