"""Every route, called with every role and with no credentials: refused (401/403) or let
through exactly as the role table says. The table is written out here, not read from the
app, so a route whose declared role changes (or a new route) fails this test until the
table agrees."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.entrypoints.api.contract import PUBLIC, ROLE_RANK
from tests.integration.api_support import ROLES, Api, running_api

pytestmark = pytest.mark.integration

# (method, rule) -> the least role allowed
ROLE_TABLE = {
    ("GET", "/api/openapi.json"): PUBLIC,
    ("POST", "/api/session"): PUBLIC,
    ("GET", "/api/session"): "viewer",
    ("DELETE", "/api/session"): "viewer",
    ("GET", "/api/products"): "viewer",
    ("POST", "/api/products"): "admin",
    ("GET", "/api/products/<gtin>"): "viewer",
    ("PATCH", "/api/products/<gtin>"): "admin",
    ("GET", "/api/batches"): "viewer",
    ("POST", "/api/batches"): "admin",
    ("GET", "/api/batches/<int:batch_id>"): "viewer",
    ("POST", "/api/batches/<int:batch_id>/status"): "qa",
    ("GET", "/api/batches/<int:batch_id>/custody"): "viewer",
    ("GET", "/api/items"): "viewer",
    ("POST", "/api/items"): "admin",
    ("GET", "/api/items/<ref>"): "viewer",
    ("GET", "/api/items/<ref>/custody"): "viewer",
    ("GET", "/api/items/<ref>/custody/current"): "viewer",
    ("GET", "/api/zones"): "viewer",
    ("POST", "/api/zones"): "admin",
    ("GET", "/api/zones/<zone_id>"): "viewer",
    ("PATCH", "/api/zones/<zone_id>"): "admin",
    ("GET", "/api/sites"): "viewer",
    ("POST", "/api/sites"): "admin",
    ("GET", "/api/sites/<site_id>"): "viewer",
    ("PATCH", "/api/sites/<site_id>"): "admin",
    ("GET", "/api/customers"): "viewer",
    ("POST", "/api/customers"): "admin",
    ("GET", "/api/customers/<customer_id>"): "viewer",
    ("PATCH", "/api/customers/<customer_id>"): "admin",
    ("GET", "/api/orders"): "viewer",
    ("POST", "/api/orders"): "operator",
    ("GET", "/api/orders/<order_id>"): "viewer",
    ("PATCH", "/api/orders/<order_id>"): "operator",
    ("GET", "/api/zones/<zone_id>/items"): "viewer",
    ("GET", "/api/zones/<zone_id>/custody"): "viewer",
    ("GET", "/api/zones/<zone_id>/profiles"): "viewer",
    ("PUT", "/api/zones/<zone_id>/profiles"): "admin",
    ("GET", "/api/profiles"): "viewer",
    ("GET", "/api/profiles/<name>"): "viewer",
    ("POST", "/api/profiles"): "admin",
    ("GET", "/api/zones/<zone_id>/suppressions"): "viewer",
    ("POST", "/api/zones/<zone_id>/suppressions"): "operator",
    ("GET", "/api/scans"): "viewer",
    ("POST", "/api/scans"): "operator",
    ("GET", "/api/transfers"): "viewer",
    ("POST", "/api/transfers"): "operator",
    ("GET", "/api/transfers/<ident>"): "viewer",
    ("GET", "/api/transfers/<ident>/release"): "viewer",
    ("POST", "/api/transfers/<ident>/release"): "qa",
    ("POST", "/api/transfers/<ident>/load"): "operator",
    ("POST", "/api/transfers/<ident>/depart"): "operator",
    ("POST", "/api/transfers/<ident>/receive"): "operator",
    ("GET", "/api/shipments"): "viewer",
    ("POST", "/api/shipments"): "operator",
    ("GET", "/api/shipments/<ident>"): "viewer",
    ("GET", "/api/shipments/<ident>/release"): "viewer",
    ("POST", "/api/shipments/<ident>/release"): "qa",
    ("POST", "/api/shipments/<ident>/load"): "operator",
    ("POST", "/api/shipments/<ident>/ship"): "operator",
    ("POST", "/api/shipments/<ident>/deliver"): "operator",
    ("GET", "/api/epcis/events"): "viewer",
    ("POST", "/api/epcis/events"): "operator",
    ("GET", "/api/users"): "admin",
    ("POST", "/api/users"): "admin",
    ("PATCH", "/api/users/<username>"): "admin",
    ("GET", "/api/tokens"): "admin",
    ("POST", "/api/tokens"): "admin",
    ("DELETE", "/api/tokens/<int:token_id>"): "admin",
    ("POST", "/api/import/<any(products, batches, items):kind>"): "admin",
    ("GET", "/api/alerts"): "viewer",
    ("GET", "/api/alerts/<int:alert_id>"): "viewer",
    ("POST", "/api/alerts/<int:alert_id>/acknowledge"): "operator",
    ("POST", "/api/alerts/<int:alert_id>/comments"): "operator",
    ("POST", "/api/alerts/<int:alert_id>/assign"): "qa",
    ("POST", "/api/alerts/<int:alert_id>/resolve"): "qa",
    ("GET", "/api/excursions/<int:excursion_id>/report.pdf"): "viewer",
    ("GET", "/api/excursions"): "viewer",
    ("GET", "/api/excursions/<int:excursion_id>"): "viewer",
    ("GET", "/api/batches/<int:batch_id>/exposures"): "viewer",
    ("GET", "/api/holds"): "viewer",
    ("GET", "/api/holds/<int:hold_id>"): "viewer",
    ("POST", "/api/holds/<int:hold_id>/disposition"): "qa",
    ("GET", "/api/recalls"): "viewer",
    ("POST", "/api/recalls"): "qa",
    ("GET", "/api/recalls/<int:recall_id>"): "viewer",
    ("GET", "/api/recalls/<int:recall_id>/report.csv"): "qa",
    ("GET", "/api/recalls/<int:recall_id>/report.pdf"): "qa",
    ("GET", "/api/expiry"): "viewer",
    ("GET", "/api/order-lines/<int:line_id>/fefo"): "viewer",
    ("GET", "/api/sites/<site_id>/approvals"): "viewer",
    ("PUT", "/api/sites/<site_id>/approvals"): "admin",
    ("POST", "/api/release-gate/check"): "viewer",
    ("GET", "/api/notification-channels"): "admin",
    ("POST", "/api/notification-channels"): "admin",
    ("DELETE", "/api/notification-channels/<int:channel_id>"): "admin",
    ("GET", "/api/gateways"): "viewer",
    ("GET", "/api/gateways/<gateway_id>"): "viewer",
    ("GET", "/api/dead-letters"): "admin",
    ("GET", "/api/dead-letters/<int:letter_id>"): "admin",
    ("POST", "/api/dead-letters/<int:letter_id>/replay"): "admin",
    ("POST", "/api/dead-letters/replay"): "admin",
    ("GET", "/api/quarantined-readings"): "admin",
    ("GET", "/api/implausible-readings"): "admin",
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


def test_every_route_with_every_role(api: Api) -> None:
    wrong = []
    for (method, rule), needed in sorted(ROLE_TABLE.items()):
        url = concrete(rule)
        for role in (None, *ROLES):
            kwargs: dict[str, object] = {"headers": api.as_(role)}
            if "import" in rule:
                kwargs["data"], kwargs["content_type"] = "gtin,name\n", "text/csv"
            elif method in ("POST", "PATCH"):
                kwargs["json"] = {}
            status = api.client.open(url, method=method, **kwargs).status_code
            if needed == PUBLIC:
                expected = "allowed"
            elif role is None:
                expected = 401
            elif ROLE_RANK[role] < ROLE_RANK[needed]:
                expected = 403
            else:
                expected = "allowed"
            ok = status not in (401, 403) if expected == "allowed" else status == expected
            assert status != 500, f"{method} {url} as {role}: 500"
            if not ok:
                wrong.append(f"{method} {url} as {role}: {status}, expected {expected}")
    assert wrong == []
