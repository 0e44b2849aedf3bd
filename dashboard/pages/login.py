"""Login: username and password, starting a login session (cloud.views.accounts)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import dash
from dash import Input, Output, State, callback, dcc, html, no_update
from flask import request

from dashboard import services
from dashboard.auth import local_path, log_in

dash.register_page(__name__, path="/login", name="Log in", nav=False, order=99)
REFUSED = "Wrong username or password, or the account is locked or inactive."


def layout(**_query: str) -> html.Div:
    return html.Div(
        className="login-card",
        children=[
            html.H1("Log in"),
            html.P("Cold-chain control room", className="muted"),
            dcc.Location(id="login-location"),
            html.Label("Username", htmlFor="login-username"),
            dcc.Input(id="login-username", type="text", autoComplete="username", autoFocus=True),
            html.Label("Password", htmlFor="login-password"),
            dcc.Input(
                id="login-password", type="password", autoComplete="current-password", n_submit=0
            ),
            html.Button("Log in", id="login-submit", className="primary", n_clicks=0),
            html.Div(id="login-message", className="error", role="alert"),
        ],
    )


def next_page(search: str | None) -> str:
    """Where to go after login: the `next` parameter if it is a path on this site, else /."""
    target = parse_qs(urlparse(search or "").query or (search or "").lstrip("?")).get("next")
    return local_path(target[0] if target else None)


@callback(
    Output("login-location", "href"),
    Output("login-message", "children"),
    Input("login-submit", "n_clicks"),
    Input("login-password", "n_submit"),
    State("login-username", "value"),
    State("login-password", "value"),
    State("login-location", "search"),
    prevent_initial_call=True,
)
def submit(
    _clicks: int, _submits: int, username: str | None, password: str | None, search: str | None
) -> tuple[object, str]:
    if not username or not password:
        return no_update, "Enter your username and password."
    client = request.remote_addr or "unknown"
    wait = services.accounts().throttle.attempt("login", client, username.strip())
    if wait is not None:
        return no_update, f"Too many attempts: try again in {wait:.0f} s."
    done = services.accounts().log_in(username.strip(), password, client)
    if done is None:
        return no_update, REFUSED
    user, secret = done
    log_in(user, secret)
    return ("/password" if user.must_change_password else next_page(search)), ""
