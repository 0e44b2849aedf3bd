"""What each route accepts and who may call it, declared on the route function.

The authorisation hook and the OpenAPI document both read these declarations, so the role a
route needs and the schema it documents cannot drift from what it enforces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

PUBLIC = "public"
ROLE_RANK = {"viewer": 0, "operator": 1, "qa": 2, "admin": 3}  # each may do what those below may
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, kw_only=True)
class Contract:
    role: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    media: str = "application/json"
    status: int = 200


def endpoint(
    role: str,
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    media: str = "application/json",
    status: int = 200,
) -> Callable[[F], F]:
    """Declare the least role a route needs (or PUBLIC), its body and query models."""
    if role != PUBLIC and role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def declare(view: F) -> F:
        # a function's attributes are not typed: contract_of reads this one back
        view.contract = Contract(  # type: ignore[attr-defined]
            role=role, body=body, query=query, media=media, status=status
        )
        return view

    return declare


def contract_of(view: Callable[..., Any] | None) -> Contract | None:
    return getattr(view, "contract", None)


def allows(role: str, needed: str) -> bool:
    return needed == PUBLIC or ROLE_RANK.get(role, -1) >= ROLE_RANK[needed]


class Body(BaseModel):
    """A request body: unknown fields are errors; `reason` feeds the audit trail."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = None


class Query(BaseModel):
    """A query string: unknown parameters are errors, so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
