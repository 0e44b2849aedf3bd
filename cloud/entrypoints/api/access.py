"""Users, their roles (given by one admin, confirmed by a second) and API tokens (admins)."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, g, jsonify
from pydantic import Field

from cloud.adapters.orm.people import ApiToken, User
from cloud.domain.access import TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.pagination import Page, page_of
from cloud.entrypoints.api.problems import Problem, invalid, not_found, parse_body, parse_query
from cloud.entrypoints.api.representations import token_json, user_json
from cloud.service_layer.accounts import reset_password, unlock
from cloud.service_layer.passwords import WeakPassword, check_policy
from cloud.service_layer.roles import (
    AccountConflict,
    AccountRefused,
    add_account,
    change_account,
    change_role,
    confirm_role,
)
from cloud.service_layer.signatures import user_named
from cloud.service_layer.tokens import TokenRefused, issue_token, revoke_token
from cloud.views import people

bp = Blueprint("access", __name__, url_prefix="/api")
Role = Literal["viewer", "operator", "qa", "admin"]
Scope = Literal["read", "scans", "movements", "epcis:import", "master-data"]


class NewUser(Body):
    username: str = Field(min_length=1, max_length=64)
    full_name: str = Field(min_length=1, max_length=200)
    kind: Literal["person", "machine"] = "person"
    role: Role
    # a person's, by the policy (cloud.service_layer.passwords); a machine has none
    password: str | None = Field(None, max_length=256)


class UserChange(Body):
    role: Role | None = None
    active: bool | None = None
    full_name: str | None = Field(None, min_length=1, max_length=200)


class Reasoned(Body):
    reason: str = Field(min_length=1)


class NewToken(Body):
    username: str
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1)
    days: int = Field(TOKEN_DAYS_DEFAULT, ge=1, le=TOKEN_DAYS_MAX)


def _user(username: str) -> User:
    user = user_named(get_db(), username)
    if user is None:
        raise not_found(f"user {username}")
    return user


def _refused(exc: Exception) -> Problem:
    return Problem(403, "forbidden", "Forbidden", str(exc))


def _invalid(field: str, exc: Exception) -> Problem:
    return invalid(422, str(exc), [{"field": field, "message": str(exc)}])


def _account_json(user: User, locked: set[int]) -> dict[str, Any]:
    return {
        **user_json(user),
        "locked": user.id in locked,
        "must_change_password": user.must_change_password,
    }


@bp.get("/users")
@endpoint("access", query=Page)
def list_users() -> Any:
    """Users by username, with whether each is locked out."""
    locked = people.locked_user_ids(get_db())
    return page_of(people.users(), parse_query(Page), lambda u: _account_json(u, locked))


@bp.post("/users/<username>/unlock")
@endpoint("access", body=Reasoned)
def unlock_user(username: str) -> Any:
    """Unlock an account locked after wrong passwords (a reason is required and audited)."""
    given = parse_body(Reasoned)
    db = get_db()
    user = _user(username)
    try:
        unlock(db, user, given.reason)
    except LookupError as exc:
        raise Problem(409, "not-locked", "Not locked", str(exc)) from exc
    db.commit()
    return jsonify(_account_json(user, people.locked_user_ids(db)))


@bp.post("/users/<username>/password")
@endpoint("access", body=Reasoned)
def reset_user_password(username: str) -> Any:
    """Reset a user's password: a temporary one, in this response only, that the user must
    change at the next login; the user's sessions end."""
    given = parse_body(Reasoned)
    db = get_db()
    user = _user(username)
    temporary = reset_password(db, user, given.reason)
    db.commit()
    return jsonify({**_account_json(user, people.locked_user_ids(db)), "password": temporary})


@bp.post("/users")
@endpoint("access", body=NewUser, status=201)
def add_user() -> Any:
    """Add a person or a machine user; a role above viewer waits for a second admin."""
    given = parse_body(NewUser)
    if given.kind == "person" and given.password is None:
        raise _invalid("password", ValueError("a person needs a password"))
    try:
        if given.password is not None:
            check_policy(given.password, given.username)
    except WeakPassword as exc:
        raise invalid(422, str(exc), [{"field": "password", "message": str(exc)}]) from exc
    db = get_db()
    if user_named(db, given.username) is not None:
        raise Problem(409, "conflict", "Conflict", f"user {given.username} exists already")
    try:
        user = add_account(
            db, g.user, given.username, given.full_name, given.role, given.password, given.kind
        )
    except ValueError as exc:
        raise _invalid("(body)", exc) from exc
    db.commit()
    return jsonify(user_json(user)), 201


@bp.patch("/users/<username>")
@endpoint("access", body=UserChange)
def change_user(username: str) -> Any:
    """Change a user's role (pending a second admin's confirmation), name or active flag; an
    audited update: give a reason. Nobody changes their own role or activation."""
    given = parse_body(UserChange)
    db = get_db()
    _user(username)
    try:
        if given.role is not None:
            change_role(db, g.user, username, given.role, db.info.get("reason"))
        user = change_account(db, g.user, username, given.active, given.full_name)
    except AccountRefused as exc:
        raise _refused(exc) from exc
    except ValueError as exc:
        raise _invalid("reason" if "reason" in str(exc) else "role", exc) from exc
    db.commit()
    return jsonify(user_json(user))


@bp.post("/users/<username>/role-confirmation")
@endpoint("access", body=Body)
def confirm_user_role(username: str) -> Any:
    """A second admin (not the one who made the change) confirms a user's pending role."""
    parse_body(Body, optional=True)
    db = get_db()
    _user(username)
    try:
        user = confirm_role(db, g.user, username, db.info.get("reason"))
    except AccountRefused as exc:
        raise _refused(exc) from exc
    except AccountConflict as exc:
        raise Problem(409, "conflict", "Conflict", str(exc)) from exc
    except ValueError as exc:
        raise _invalid("reason", exc) from exc
    db.commit()
    return jsonify(user_json(user))


@bp.get("/tokens")
@endpoint("access", query=Page)
def list_tokens() -> Any:
    """API tokens (never their secrets), with their scopes, expiry and issuer."""
    names = people.usernames(get_db())
    return page_of(
        people.tokens(),
        parse_query(Page),
        lambda t: token_json(t, names[t.user_id], names.get(t.issued_by or 0)),
    )


@bp.post("/tokens")
@endpoint("access", body=NewToken, status=201)
def add_token() -> Any:
    """Issue a scoped, expiring token to yourself or to a machine user; the secret is in this
    response only."""
    given = parse_body(NewToken)
    db = get_db()
    user = _user(given.username)
    try:
        token, secret = issue_token(
            db, user.username, given.name, issuer=g.user, scopes=given.scopes, days=given.days
        )
    except TokenRefused as exc:
        raise _refused(exc) from exc
    except ValueError as exc:
        raise _invalid("username", exc) from exc
    db.commit()
    return jsonify({**token_json(token, user.username, g.user.username), "token": secret}), 201


@bp.delete("/tokens/<int:token_id>")
@endpoint("access")
def delete_token(token_id: int) -> Any:
    """Revoke a token (an audited update: give a reason in X-Reason)."""
    db = get_db()
    if db.get(ApiToken, token_id) is None:
        raise not_found(f"token {token_id}")
    revoke_token(db, token_id)
    db.commit()
    return "", 204
