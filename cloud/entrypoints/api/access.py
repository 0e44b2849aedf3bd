"""Users and API tokens (admin only)."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, jsonify
from pydantic import Field

from cloud.adapters.orm.people import ApiToken, User
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.pagination import Page, page_of
from cloud.entrypoints.api.problems import Problem, invalid, not_found, parse_body, parse_query
from cloud.entrypoints.api.representations import token_json, user_json
from cloud.service_layer.accounts import reset_password, unlock
from cloud.service_layer.passwords import WeakPassword, check_policy
from cloud.service_layer.signatures import create_user, user_named
from cloud.service_layer.tokens import issue_token, revoke_token
from cloud.views import people

bp = Blueprint("access", __name__, url_prefix="/api")
Role = Literal["viewer", "operator", "qa", "admin"]


class NewUser(Body):
    username: str = Field(min_length=1, max_length=64)
    full_name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str = Field(max_length=256)  # the policy: cloud.service_layer.passwords


class UserChange(Body):
    role: Role | None = None
    active: bool | None = None
    full_name: str | None = Field(None, min_length=1, max_length=200)


class Reasoned(Body):
    reason: str = Field(min_length=1)


class NewToken(Body):
    username: str
    name: str = Field(min_length=1, max_length=100)


def _user(username: str) -> User:
    user = user_named(get_db(), username)
    if user is None:
        raise not_found(f"user {username}")
    return user


def _account_json(user: User, locked: set[int]) -> dict[str, Any]:
    return {
        **user_json(user),
        "locked": user.id in locked,
        "must_change_password": user.must_change_password,
    }


@bp.get("/users")
@endpoint("admin", query=Page)
def list_users() -> Any:
    """Users by username, with whether each is locked out."""
    locked = people.locked_user_ids(get_db())
    return page_of(people.users(), parse_query(Page), lambda u: _account_json(u, locked))


@bp.post("/users/<username>/unlock")
@endpoint("admin", body=Reasoned)
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
@endpoint("admin", body=Reasoned)
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
@endpoint("admin", body=NewUser, status=201)
def add_user() -> Any:
    """Add a user (the creation lands in the audit trail)."""
    given = parse_body(NewUser)
    try:
        check_policy(given.password, given.username)
    except WeakPassword as exc:
        raise invalid(422, str(exc), [{"field": "password", "message": str(exc)}]) from exc
    db = get_db()
    if user_named(db, given.username) is not None:
        raise Problem(409, "conflict", "Conflict", f"user {given.username} exists already")
    try:
        user = create_user(db, given.username, given.full_name, given.role, given.password)
    except ValueError as exc:
        raise invalid(422, str(exc), [{"field": "(body)", "message": str(exc)}]) from exc
    db.commit()
    return jsonify(user_json(user)), 201


@bp.patch("/users/<username>")
@endpoint("admin", body=UserChange)
def change_user(username: str) -> Any:
    """Change a user's role, name or active flag (an audited update: give a reason)."""
    given = parse_body(UserChange)
    db = get_db()
    user = _user(username)
    for field, value in given.model_dump(exclude={"reason"}, exclude_unset=True).items():
        setattr(user, field, value)
    db.commit()
    return jsonify(user_json(user))


@bp.get("/tokens")
@endpoint("admin", query=Page)
def list_tokens() -> Any:
    """API tokens (never their secrets)."""
    names = people.usernames(get_db())
    return page_of(people.tokens(), parse_query(Page), lambda t: token_json(t, names[t.user_id]))


@bp.post("/tokens")
@endpoint("admin", body=NewToken, status=201)
def add_token() -> Any:
    """Issue a token acting as a user; the secret is in this response only."""
    given = parse_body(NewToken)
    db = get_db()
    user = _user(given.username)
    try:
        token, secret = issue_token(db, user.username, given.name)
    except ValueError as exc:
        raise invalid(422, str(exc), [{"field": "username", "message": str(exc)}]) from exc
    db.commit()
    return jsonify({**token_json(token, user.username), "token": secret}), 201


@bp.delete("/tokens/<int:token_id>")
@endpoint("admin")
def delete_token(token_id: int) -> Any:
    """Revoke a token (an audited update: give a reason in X-Reason)."""
    db = get_db()
    if db.get(ApiToken, token_id) is None:
        raise not_found(f"token {token_id}")
    revoke_token(db, token_id)
    db.commit()
    return "", 204
