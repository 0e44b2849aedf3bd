"""Accounts (admins): who can log in, which accounts are locked after wrong passwords; unlock
one, or reset its password, with a reason that lands in the audit trail."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from cloud.views.accounts import AccountView
from cloud.views.control_room import UserView
from dashboard import services
from dashboard.auth import guarded, may, require

dash.register_page(__name__, path="/accounts", name="Accounts", order=10)
HEADER = ("Username", "Name", "Role", "Active", "Locked", "Must change password")


@guarded
def layout(user: UserView, **_q: str) -> html.Div:
    if not may("access", user):
        return html.Div(
            [html.H1("Accounts"), html.P("Only admins manage accounts.", className="muted")]
        )
    rows = services.accounts().accounts()
    return html.Div(
        [
            html.H1("Accounts"),
            html.Div(_table(rows), id="accounts-table", className="panel"),
            html.Div(
                [
                    html.Label("Account", htmlFor="accounts-user"),
                    dcc.Input(id="accounts-user", type="text", placeholder="username"),
                    html.Label("Reason", htmlFor="accounts-reason"),
                    dcc.Input(id="accounts-reason", type="text", placeholder="why (audited)"),
                    html.Button("Unlock", id="accounts-unlock", className="primary"),
                    html.Button("Reset password", id="accounts-reset", className="secondary"),
                ],
                className="filters",
            ),
            html.Div(id="accounts-outcome", role="status"),
        ]
    )


@callback(
    Output("accounts-outcome", "children"),
    Output("accounts-table", "children"),
    Input("accounts-unlock", "n_clicks"),
    Input("accounts-reset", "n_clicks"),
    State("accounts-user", "value"),
    State("accounts-reason", "value"),
    prevent_initial_call=True,
)
def act(_unlock: int | None, _reset: int | None, username: str | None, reason: str | None) -> Any:
    """Unlock the chosen account or reset its password, as the logged-in admin."""
    admin = require("access")
    username = (username or "").strip()
    if not username or not (reason or "").strip():
        return html.Span("Choose an account and give a reason.", className="error"), no_update
    desk = services.accounts()
    try:
        if dash.ctx.triggered_id == "accounts-reset":
            temporary = desk.reset(admin, username, (reason or "").strip())
            said: Any = html.Span(
                [
                    f"Password of {username} reset. Temporary password (shown once): ",
                    html.Code(temporary, id="accounts-temporary"),
                ]
            )
        else:
            desk.unlock(admin, username, (reason or "").strip())
            said = html.Span(f"{username} unlocked.", className="ok")
    except (LookupError, ValueError) as exc:
        said = html.Span(str(exc).capitalize() + ".", className="error")
    return said, _table(desk.accounts())


def _yes(flag: bool) -> str:
    return "yes" if flag else "--"


def _table(rows: list[AccountView]) -> Any:
    return html.Table(
        [
            html.Tr([html.Th(h) for h in HEADER]),
            *[
                html.Tr(
                    [
                        html.Td(a.username),
                        html.Td(a.full_name),
                        html.Td(a.role),
                        html.Td(_yes(a.active)),
                        html.Td(
                            "locked" if a.locked else "--", className="error" if a.locked else ""
                        ),
                        html.Td(_yes(a.must_change_password)),
                    ],
                    id=f"accounts-row-{a.username}",
                )
                for a in rows
            ],
        ],
        className="grid",
        id="accounts-grid",
    )
