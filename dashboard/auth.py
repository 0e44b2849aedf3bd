"""Who is looking at the control room, and what their role lets them do.

Login keeps the user's id in the Flask session cookie (signed with the app's secret key);
every page and every action asks here. Actions a role may not take are not offered on the
page, and are refused again on the server if a request asks for them anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from dash import dcc, html
from dash.exceptions import PreventUpdate
from flask import session

from cloud.views.control_room import UserView
from dashboard import services

# What each role may do in the control room; viewers only look.
PERMISSIONS: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({"operator", "qa", "admin"}),
    "comment": frozenset({"operator", "qa", "admin"}),
    "assign": frozenset({"qa", "admin"}),
    "resolve": frozenset({"qa", "admin"}),
    "disposition": frozenset(
        {"qa"}
    ),  # release/reject: signed, QA only (cloud.service_layer.signatures)
    "investigate": frozenset({"qa"}),
    "shipment_release": frozenset({"qa"}),  # cold goods released for shipment: signed, QA
    "recall": frozenset({"qa"}),
    "profiles": frozenset({"admin"}),  # what a zone is judged by: admins only, with a reason
    "dead_letters": frozenset({"admin"}),  # refused messages: read and replayed by admins
}


def current_user() -> UserView | None:
    """The logged-in, still active user of this request, else None."""
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return None
    user = services.control_room().user(user_id)
    if user is None:
        session.clear()
    return user


def log_in(user: UserView) -> None:
    session.clear()
    session["user_id"] = user.id


def may(action: str, user: UserView | None = None) -> bool:
    """True if the user (default: the current one) may take `action`."""
    user = user if user is not None else current_user()
    return user is not None and user.role in PERMISSIONS[action]


def require(action: str | None = None) -> UserView:
    """The current user, who must be logged in (and allowed `action`); else no update."""
    user = current_user()
    if user is None or (action is not None and user.role not in PERMISSIONS[action]):
        raise PreventUpdate
    return user


def guarded(layout: Callable[..., Any]) -> Callable[..., Any]:
    """A page layout that sends anyone not logged in to the login page."""

    def page(**query: str) -> Any:
        user = current_user()
        if user is None:
            return html.Div(
                [
                    dcc.Location(id="auth-redirect", href="/login", refresh=True),
                    html.P("Log in to see this page.", className="muted"),
                ]
            )
        return layout(user, **query)

    page.__doc__ = layout.__doc__
    return page


def login_href(path: str) -> str:
    return f"/login?next={quote(path)}"
