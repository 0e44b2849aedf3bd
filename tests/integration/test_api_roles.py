"""Every route, called with every role, with tokens and with no credentials: refused
(401/403) or let through exactly as the tables say. The tables (route -> action, action ->
roles and token scope) are written out here, not read from the app, so a route whose action
changes, a new route or a changed duty fails this test until the tables agree."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.domain.access import ACTIONS
from cloud.entrypoints.api.contract import PUBLIC
from tests.integration.api_support import ROLES, SCANNER_SCOPES, Api, running_api

pytestmark = pytest.mark.integration

# action -> (the roles that may take it, the token scope that carries it); segregation of
# duties: admin holds no operational or QA power, QA also does an operator's work.
DUTIES = {
    "read": ({"viewer", "operator", "qa", "admin"}, "read"),
    "scan": ({"operator", "qa"}, "scans"),
    "movements": ({"operator", "qa"}, "movements"),
    "epcis-import": ({"operator", "qa"}, "epcis:import"),
    "suppress": ({"operator", "qa"}, None),
    "acknowledge": ({"operator", "qa"}, None),
    "comment": ({"operator", "qa"}, None),
    "assign": ({"qa"}, None),
    "resolve": ({"qa"}, None),
    "hold": ({"qa"}, None),
    "investigate": ({"qa"}, None),
    "disposition": ({"qa"}, None),
    "recall": ({"qa"}, None),
    "shipment_release": ({"qa"}, None),
    "recall-report": ({"qa"}, None),
    "master-data": ({"admin"}, "master-data"),
    "profiles": ({"admin"}, "master-data"),
    "access": ({"admin"}, None),
    "configuration": ({"admin"}, None),
    "dead_letters": ({"admin"}, None),
}
# Tokens of the test world: who they act as (their role) and their scopes.
TOKENS = {
    "scanner": ("operator", set(SCANNER_SCOPES)),
    "admin": ("admin", {"read", "master-data"}),
}

# (method, rule) -> the action the route performs
ROLE_TABLE = {
    ("GET", "/api/openapi.json"): PUBLIC,
    ("POST", "/api/session"): PUBLIC,
    ("GET", "/api/session"): "read",
    ("DELETE", "/api/session"): "read",
    ("GET", "/api/products"): "read",
    ("POST", "/api/products"): "master-data",
    ("GET", "/api/products/<gtin>"): "read",
    ("PATCH", "/api/products/<gtin>"): "master-data",
    ("GET", "/api/batches"): "read",
    ("POST", "/api/batches"): "master-data",
    ("GET", "/api/batches/<int:batch_id>"): "read",
    ("POST", "/api/batches/<int:batch_id>/status"): "hold",
    ("GET", "/api/batches/<int:batch_id>/custody"): "read",
    ("GET", "/api/items"): "read",
    ("POST", "/api/items"): "master-data",
    ("GET", "/api/items/<ref>"): "read",
    ("GET", "/api/items/<ref>/custody"): "read",
    ("GET", "/api/items/<ref>/custody/current"): "read",
    ("GET", "/api/zones"): "read",
    ("POST", "/api/zones"): "master-data",
    ("GET", "/api/zones/<zone_id>"): "read",
    ("PATCH", "/api/zones/<zone_id>"): "master-data",
    ("GET", "/api/sites"): "read",
    ("POST", "/api/sites"): "master-data",
    ("GET", "/api/sites/<site_id>"): "read",
    ("PATCH", "/api/sites/<site_id>"): "master-data",
    ("GET", "/api/customers"): "read",
    ("POST", "/api/customers"): "master-data",
    ("GET", "/api/customers/<customer_id>"): "read",
    ("PATCH", "/api/customers/<customer_id>"): "master-data",
    ("GET", "/api/orders"): "read",
    ("POST", "/api/orders"): "movements",
    ("GET", "/api/orders/<order_id>"): "read",
    ("PATCH", "/api/orders/<order_id>"): "movements",
    ("GET", "/api/zones/<zone_id>/items"): "read",
    ("GET", "/api/zones/<zone_id>/custody"): "read",
    ("GET", "/api/zones/<zone_id>/profiles"): "read",
    ("PUT", "/api/zones/<zone_id>/profiles"): "profiles",
    ("GET", "/api/profiles"): "read",
    ("GET", "/api/profiles/<name>"): "read",
    ("POST", "/api/profiles"): "profiles",
    ("GET", "/api/zones/<zone_id>/suppressions"): "read",
    ("POST", "/api/zones/<zone_id>/suppressions"): "suppress",
    ("GET", "/api/scans"): "read",
    ("POST", "/api/scans"): "scan",
    ("GET", "/api/transfers"): "read",
    ("POST", "/api/transfers"): "movements",
    ("GET", "/api/transfers/<ident>"): "read",
    ("POST", "/api/transfers/<ident>/load"): "movements",
    ("POST", "/api/transfers/<ident>/depart"): "movements",
    ("POST", "/api/transfers/<ident>/receive"): "movements",
    ("GET", "/api/shipments"): "read",
    ("POST", "/api/shipments"): "movements",
    ("GET", "/api/shipments/<ident>"): "read",
    ("POST", "/api/shipments/<ident>/load"): "movements",
    ("POST", "/api/shipments/<ident>/ship"): "movements",
    ("POST", "/api/shipments/<ident>/deliver"): "movements",
    ("GET", "/api/epcis/events"): "read",
    ("POST", "/api/epcis/events"): "epcis-import",
    ("GET", "/api/users"): "access",
    ("POST", "/api/users"): "access",
    ("PATCH", "/api/users/<username>"): "access",
    ("POST", "/api/users/<username>/role-confirmation"): "access",
    ("GET", "/api/tokens"): "access",
    ("POST", "/api/tokens"): "access",
    ("DELETE", "/api/tokens/<int:token_id>"): "access",
    ("POST", "/api/import/<any(products, batches, items):kind>"): "master-data",
    ("GET", "/api/alerts"): "read",
    ("GET", "/api/alerts/<int:alert_id>"): "read",
    ("POST", "/api/alerts/<int:alert_id>/acknowledge"): "acknowledge",
    ("POST", "/api/alerts/<int:alert_id>/comments"): "comment",
    ("POST", "/api/alerts/<int:alert_id>/assign"): "assign",
    ("POST", "/api/alerts/<int:alert_id>/resolve"): "resolve",
    ("GET", "/api/excursions/<int:excursion_id>/report.pdf"): "read",
    ("GET", "/api/excursions"): "read",
    ("GET", "/api/excursions/<int:excursion_id>"): "read",
    ("GET", "/api/batches/<int:batch_id>/exposures"): "read",
    ("GET", "/api/holds"): "read",
    ("GET", "/api/holds/<int:hold_id>"): "read",
    ("POST", "/api/holds/<int:hold_id>/disposition"): "disposition",
    ("GET", "/api/recalls"): "read",
    ("POST", "/api/recalls"): "recall",
    ("GET", "/api/recalls/<int:recall_id>"): "read",
    ("GET", "/api/recalls/<int:recall_id>/report.csv"): "recall-report",
    ("GET", "/api/recalls/<int:recall_id>/report.pdf"): "recall-report",
    ("GET", "/api/expiry"): "read",
    ("GET", "/api/order-lines/<int:line_id>/fefo"): "read",
    ("GET", "/api/sites/<site_id>/approvals"): "read",
    ("PUT", "/api/sites/<site_id>/approvals"): "master-data",
    ("POST", "/api/release-gate/check"): "read",
    ("GET", "/api/notification-channels"): "configuration",
    ("POST", "/api/notification-channels"): "configuration",
    ("DELETE", "/api/notification-channels/<int:channel_id>"): "configuration",
    ("GET", "/api/gateways"): "read",
    ("GET", "/api/gateways/<gateway_id>"): "read",
    ("GET", "/api/dead-letters"): "dead_letters",
    ("GET", "/api/master-data-proposals"): "master-data",
    ("POST", "/api/master-data-proposals/<int:proposal_id>/accept"): "master-data",
    ("POST", "/api/master-data-proposals/<int:proposal_id>/reject"): "master-data",
    ("GET", "/api/dead-letters/<int:letter_id>"): "dead_letters",
    ("POST", "/api/dead-letters/<int:letter_id>/replay"): "dead_letters",
    ("POST", "/api/dead-letters/replay"): "dead_letters",
    ("GET", "/api/quarantined-readings"): "dead_letters",
    ("GET", "/api/implausible-readings"): "dead_letters",
    ("POST", "/api/session/password"): "read",
    ("POST", "/api/users/<username>/password"): "access",
    ("POST", "/api/users/<username>/unlock"): "access",
    ("GET", "/api/shipments/<ident>/release"): "read",
    ("GET", "/api/transfers/<ident>/release"): "read",
    ("POST", "/api/shipments/<ident>/release"): "shipment_release",
    ("POST", "/api/transfers/<ident>/release"): "shipment_release",
}
# Values for path arguments: records that do not exist, so an allowed call changes nothing.
ARGUMENTS = {
    "gtin": "00000000000000",
    "batch_id": "999999",
    "ref": "00000000000000+404",
    "zone_id": "nowhere",
    "site_id": "nowhere",
    "channel_id": "999999",
    "letter_id": "999999",
    "gateway_id": "nowhere",
    "customer_id": "nobody",
    "order_id": "PO-404",
    "ident": "NOPE-1",
    "username": "nobody",
    "token_id": "999999",
    "kind": "products",
    "alert_id": "999999",
    "excursion_id": "999999",
    "recall_id": "999999",
    "hold_id": "999999",
    "line_id": "999999",
    "name": "no-such-profile",
    "proposal_id": "999999",
}


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        yield running


def concrete(rule: str) -> str:
    for name, value in ARGUMENTS.items():
        for pattern in (f"<{name}>", f"<int:{name}>", f"<any(products, batches, items):{name}>"):
            rule = rule.replace(pattern, value)
    assert "<" not in rule, rule
    return rule


def test_the_role_table_names_every_route(api: Api) -> None:
    routes = {
        (method, rule.rule)
        for rule in api.app.url_map.iter_rules()
        if rule.rule.startswith("/api")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert routes == set(ROLE_TABLE)


def test_the_duties_are_the_ones_written_here() -> None:
    assert {name: (set(a.roles), a.scope) for name, a in ACTIONS.items()} == DUTIES


def _call(api: Api, method: str, rule: str, headers: dict[str, str]) -> int:
    kwargs: dict[str, object] = {"headers": headers}
    if "import" in rule:
        kwargs["data"], kwargs["content_type"] = "gtin,name\n", "text/csv"
    elif method in ("POST", "PATCH"):
        kwargs["json"] = {}
    status = api.client.open(concrete(rule), method=method, **kwargs).status_code
    assert status != 500, f"{method} {rule}: 500"
    return status


def test_every_route_with_every_role(api: Api) -> None:
    wrong = []
    for (method, rule), action in sorted(ROLE_TABLE.items()):
        for role in (None, *ROLES):
            status = _call(api, method, rule, api.as_(role))
            if (method, rule) == ("DELETE", "/api/session") and role in api.sessions:
                del api.sessions[role]  # logged out: the next route logs them in again
            if action == PUBLIC:
                expected: object = "allowed"
            elif role is None:
                expected = 401
            elif role not in DUTIES[action][0]:
                expected = 403
            else:
                expected = "allowed"
            ok = status not in (401, 403) if expected == "allowed" else status == expected
            if not ok:
                wrong.append(f"{method} {rule} as {role}: {status}, expected {expected}")
    assert wrong == []


def test_every_route_with_every_token(api: Api) -> None:
    """A token opens a route only if its user's role allows the action and it carries the
    action's scope: default deny, and no token manages people or decides on quality."""
    wrong = []
    for (method, rule), action in sorted(ROLE_TABLE.items()):
        for token, (role, scopes) in TOKENS.items():
            status = _call(api, method, rule, api.bearer(token))
            if action == PUBLIC:
                allowed = True
            else:
                roles, scope = DUTIES[action]
                allowed = role in roles and scope is not None and scope in scopes
            if (status not in (401, 403)) != allowed or status == 401:
                wrong.append(f"{method} {rule} with {token}'s token: {status}, allowed {allowed}")
    assert wrong == []
