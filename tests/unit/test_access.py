"""The table of duties (cloud.domain.access): no ladder, default deny for tokens, pending
roles act as viewers."""

from __future__ import annotations

from cloud.domain.access import (
    ACTIONS,
    ROLES,
    SCOPES,
    effective_role,
    role_allows,
    scope_allows,
)


def test_admin_holds_no_qa_or_operational_power() -> None:
    qa_or_floor = [name for name, a in ACTIONS.items() if "qa" in a.roles and name != "read"]
    assert qa_or_floor and not any(role_allows("admin", name) for name in qa_or_floor)
    assert not any(role_allows("qa", n) for n, a in ACTIONS.items() if a.roles == {"admin"})


def test_every_action_names_known_roles_and_scopes() -> None:
    for action in ACTIONS.values():
        assert action.roles <= set(ROLES) and action.roles
        assert action.scope is None or action.scope in SCOPES


def test_tokens_are_denied_by_default_and_never_sign() -> None:
    assert not scope_allows(frozenset(), "read")
    assert scope_allows(frozenset({"read"}), "read")
    assert not scope_allows(frozenset(SCOPES), "access")
    signed = [name for name, a in ACTIONS.items() if a.signed]
    assert signed == ["disposition", "recall", "shipment_release"]
    assert not any(scope_allows(frozenset(SCOPES), name) for name in signed)


def test_a_pending_role_acts_as_a_viewer() -> None:
    assert effective_role("operator", None) == "operator"
    assert effective_role("operator", "qa") == "viewer"
    assert effective_role("qa", "viewer") == "viewer"
