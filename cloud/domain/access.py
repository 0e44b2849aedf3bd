"""Who may do what: the one table of actions, the roles that may take each, and the token
scope that carries it. The API's routes and the control room's pages both ask here.

Roles are not a ladder. Duties are segregated: an admin manages people, tokens, master data
and configuration, and holds no operational or quality power; QA decides on quality (holds,
recalls, alert resolution) and may also do an operator's work; operators move stock and
answer alerts; everyone reads. An action without a scope is never taken with a token.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("viewer", "operator", "qa", "admin")
KINDS = ("person", "machine")  # a machine acts only through tokens, never logs in nor signs
SCOPES = ("read", "scans", "movements", "epcis:import", "master-data")
MACHINE_ROLES = frozenset({"viewer", "operator", "admin"})  # a machine cannot hold QA's duty
PENDING_ROLE = "viewer"  # what a user may do while a role change waits for a second admin
TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX = 90, 365

_EVERYONE = frozenset(ROLES)
_FLOOR = frozenset({"operator", "qa"})
_QA = frozenset({"qa"})
_ADMIN = frozenset({"admin"})


@dataclass(frozen=True, kw_only=True)
class Action:
    """What a role may do: the roles allowed, and the token scope it needs (None: no token)."""

    roles: frozenset[str]
    scope: str | None
    summary: str
    signed: bool = False  # takes an electronic signature: never over a token


ACTIONS: dict[str, Action] = {
    "read": Action(roles=_EVERYONE, scope="read", summary="read records, lists and reports"),
    "scan": Action(roles=_FLOOR, scope="scans", summary="record manual scans"),
    "movements": Action(roles=_FLOOR, scope="movements", summary="orders, transfers and shipments"),
    "epcis-import": Action(roles=_FLOOR, scope="epcis:import", summary="import EPCIS events"),
    "suppress": Action(roles=_FLOOR, scope=None, summary="record a suppression window"),
    "acknowledge": Action(roles=_FLOOR, scope=None, summary="acknowledge an alert"),
    "comment": Action(roles=_FLOOR, scope=None, summary="comment on an alert"),
    "assign": Action(roles=_QA, scope=None, summary="assign an alert"),
    "resolve": Action(roles=_QA, scope=None, summary="resolve an alert"),
    "hold": Action(roles=_QA, scope=None, summary="put a batch on hold"),
    "investigate": Action(roles=_QA, scope=None, summary="keep a hold under investigation"),
    "disposition": Action(
        roles=_QA, scope=None, summary="release or reject a hold (signed)", signed=True
    ),
    "recall": Action(roles=_QA, scope=None, summary="open a recall (signed)", signed=True),
    "shipment_release": Action(
        roles=_QA, scope=None, summary="release cold goods for shipment (signed)", signed=True
    ),
    "recall-report": Action(roles=_QA, scope=None, summary="a recall's reports"),
    "master-data": Action(
        roles=_ADMIN,
        scope="master-data",
        summary="products, batches, items, sites, zones, customers, approvals, profiles",
    ),
    "profiles": Action(roles=_ADMIN, scope="master-data", summary="a zone's monitoring profiles"),
    "access": Action(roles=_ADMIN, scope=None, summary="users, their roles, API tokens"),
    "configuration": Action(roles=_ADMIN, scope=None, summary="notification channels"),
    "dead_letters": Action(roles=_ADMIN, scope=None, summary="refused messages and readings"),
}


def role_allows(role: str, action: str) -> bool:
    """True if the role may take the action."""
    return role in ACTIONS[action].roles


def scope_allows(scopes: frozenset[str], action: str) -> bool:
    """True if a token with these scopes carries the action (default deny)."""
    scope = ACTIONS[action].scope
    return scope is not None and scope in scopes


def effective_role(role: str, pending_role: str | None) -> str:
    """The role a user acts in: while a role change waits for a second admin, a viewer's."""
    return role if pending_role is None else PENDING_ROLE


def access_table() -> str:
    """The role-by-action table as Markdown (docs/security.md holds it, checked by a test)."""
    lines = [
        "| action | " + " | ".join(ROLES) + " | token scope | signed |",
        "|---|" + "---|" * len(ROLES) + "---|---|",
    ]
    for name, action in ACTIONS.items():
        cells = ["yes" if role in action.roles else "" for role in ROLES]
        scope = f"`{action.scope}`" if action.scope else "none"
        signed = "yes" if action.signed else ""
        lines.append(
            f"| `{name}`: {action.summary} | " + " | ".join(cells) + f" | {scope} | {signed} |"
        )
    return "\n".join(lines) + "\n"
