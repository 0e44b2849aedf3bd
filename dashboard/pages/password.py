"""Change your password: the current one, then a new one (12 characters or more, not a
commonly used one). After an admin's reset this is the only page a user may use."""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import services
from dashboard.auth import current_user

dash.register_page(__name__, path="/password", name="Password", nav=False, order=98)


def layout(**_query: str) -> html.Div:
    user = current_user()
    if user is None:
        return html.Div([dcc.Location(id="password-redirect", href="/login", refresh=True)])
    note = (
        "An admin reset your password: choose a new one to go on."
        if user.must_change_password
        else "Choose a new password; your other sessions end."
    )
    return html.Div(
        className="login-card",
        children=[
            html.H1("Change password"),
            html.P(note, className="muted", id="password-note"),
            dcc.Location(id="password-location"),
            html.Label("Current password", htmlFor="password-current"),
            dcc.Input(id="password-current", type="password", autoComplete="current-password"),
            html.Label("New password", htmlFor="password-new"),
            dcc.Input(id="password-new", type="password", autoComplete="new-password"),
            html.Label("New password again", htmlFor="password-again"),
            dcc.Input(id="password-again", type="password", autoComplete="new-password"),
            html.Button("Change password", id="password-submit", className="primary"),
            html.Div(id="password-message", className="error", role="alert"),
        ],
    )


@callback(
    Output("password-location", "href"),
    Output("password-message", "children"),
    Input("password-submit", "n_clicks"),
    State("password-current", "value"),
    State("password-new", "value"),
    State("password-again", "value"),
    prevent_initial_call=True,
)
def submit(
    _clicks: int | None, current: str | None, new: str | None, again: str | None
) -> tuple[object, str]:
    user = current_user()
    if user is None:
        return "/login", ""
    if not current or not new:
        return no_update, "Enter your current password and a new one."
    if new != again:
        return no_update, "The new password and its repetition differ."
    refusal = services.accounts().change_password(user, current, new)
    if refusal is not None:
        return no_update, refusal.capitalize() + "."
    return "/", ""
