"""What each route accepts and who may call it, declared on the route function.

A route names the action it performs (cloud.domain.access.ACTIONS says which roles may take
it and which token scope carries it). The authorisation hook and the OpenAPI document both
read these declarations, so who may call a route and the schema it documents cannot drift
from what it enforces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from cloud.domain.access import ACTIONS, role_allows, scope_allows

PUBLIC = "public"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, kw_only=True)
class Contract:
    action: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    media: str = "application/json"
    status: int = 200


def endpoint(
    action: str,
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    media: str = "application/json",
    status: int = 200,
) -> Callable[[F], F]:
    """Declare the action a route performs (or PUBLIC), its body and query models."""
    if action != PUBLIC and action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")

    def declare(view: F) -> F:
        # a function's attributes are not typed: contract_of reads this one back
        view.contract = Contract(  # type: ignore[attr-defined]
            action=action, body=body, query=query, media=media, status=status
        )
        return view

    return declare


def contract_of(view: Callable[..., Any] | None) -> Contract | None:
    return getattr(view, "contract", None)


def allows(role: str, action: str) -> bool:
    """True if the role may take the route's action."""
    return action == PUBLIC or role_allows(role, action)


def token_allows(scopes: frozenset[str], action: str) -> bool:
    """True if a token with these scopes may call a route performing the action."""
    return action == PUBLIC or scope_allows(scopes, action)


class Body(BaseModel):
    """A request body: unknown fields are errors; `reason` feeds the audit trail."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = None


class Query(BaseModel):
    """A query string: unknown parameters are errors, so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
