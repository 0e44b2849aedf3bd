"""Who is looking at the control room, and what their role lets them do.

Login starts a session kept on the server (cloud.views.accounts); the control room's own
cookie (not the API's) holds only its random secret. Every page and every action asks here.
Actions a role may not take are not offered on the page, and are refused again on the server
if a request asks for them anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from dash import dcc, html
from dash.exceptions import PreventUpdate
from flask import current_app, g, request

from cloud.domain.access import ACTIONS
from cloud.views.control_room import UserView
from dashboard import services

COOKIE = "coldchain_room_session"
# What each role may do: one table for the API and the control room (cloud.domain.access);
# unlocking accounts and resetting passwords is the admins' "access" duty.
PERMISSIONS: dict[str, frozenset[str]] = {name: a.roles for name, a in ACTIONS.items()}


def _user_initiated() -> bool:
    """False for a page's periodic refresh, which must not keep an idle session alive."""
    if not request.path.endswith("/_dash-update-component"):
        return True
    body = request.get_json(silent=True) or {}
    changed = body.get("changedPropIds") or []
    return not changed or not all(str(p).endswith(".n_intervals") for p in changed)


def current_user() -> UserView | None:
    """The logged-in, still active user of this request's live session, else None."""
    if "room_user" in g:
        return g.room_user
    secret = request.cookies.get(COOKIE)
    user = None
    if secret:
        user = services.accounts().session_user(secret, active=_user_initiated())
        if user is None:
            g.room_cookie = ""  # expired or revoked: the browser forgets it
    g.room_user = user
    return user


def log_in(user: UserView, secret: str) -> None:
    """The response to this request sets the session's cookie."""
    g.room_user, g.room_cookie = user, secret


def log_out() -> None:
    secret = request.cookies.get(COOKIE)
    if secret:
        services.accounts().log_out(secret)
    g.room_user, g.room_cookie = None, ""


def set_cookie(response: Any) -> Any:
    """After each request: set or clear the session cookie if this request changed it."""
    secret = g.get("room_cookie")
    if secret is None:
        return response
    if secret == "":
        response.delete_cookie(COOKIE, path="/")
        return response
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure
    response.set_cookie(COOKIE, secret, path="/", httponly=True, secure=secure, samesite="Lax")
    return response


def may(action: str, user: UserView | None = None) -> bool:
    """True if the user (default: the current one) may take `action`."""
    user = user if user is not None else current_user()
    return user is not None and user.role in PERMISSIONS[action]


def require(action: str | None = None) -> UserView:
    """The current user, who must be logged in (and allowed `action`); else no update."""
    user = current_user()
    if user is None or user.must_change_password:
        raise PreventUpdate
    if action is not None and user.role not in PERMISSIONS[action]:
        raise PreventUpdate
    return user


def guarded(layout: Callable[..., Any]) -> Callable[..., Any]:
    """A page layout that sends anyone not logged in to the login page, and a user whose
    password an admin reset to the password page."""

    def page(**query: str) -> Any:
        user = current_user()
        if user is None or user.must_change_password:
            target = "/login" if user is None else "/password"
            return html.Div(
                [
                    dcc.Location(id="auth-redirect", href=target, refresh=True),
                    html.P(
                        "Log in to see this page."
                        if user is None
                        else "Choose a new password first.",
                        className="muted",
                    ),
                ]
            )
        return layout(user, **query)

    page.__doc__ = layout.__doc__
    return page


def login_href(path: str) -> str:
    return f"/login?next={quote(path)}"


def local_path(target: str | None) -> str:
    """`target` if it is a path on this site, else "/": no redirect leaves the control room
    (`//host`, `/\\host`, `https://...`, `javascript:` are all refused)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 32 or c == "\\" for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target
