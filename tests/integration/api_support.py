"""The world the API tests run in: sites, zones, read points, a product with batches and
items, an order, one person per role logged in with a session cookie (and a second admin),
and a machine user (a dock scanner) with a scoped bearer token. No tests here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.people import User
from cloud.adapters.orm.readings import Gateway, ReadPoint, Site, Zone
from cloud.adapters.orm.traceability import Batch, Customer, Item, Order, Product
from cloud.entrypoints.api import create_app
from cloud.entrypoints.api.auth import COOKIE
from cloud.entrypoints.api.database import EXTENSION
from cloud.service_layer.signatures import create_user
from cloud.service_layer.tokens import issue_token
from edge import gs1

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
GTIN = "09506000134352"
PASSWORD = "correct horse battery"
ROLES = ("viewer", "operator", "qa", "admin")
PEOPLE = (*ROLES, "admin2")  # admin2: the second admin who confirms role changes
SCANNER_SCOPES = ("read", "scans", "movements", "epcis:import")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def epc(serial: int) -> str:
    return gs1.encode_sgtin96(GTIN, serial, company_prefix_length=7)


@dataclass
class Api:
    app: Flask
    client: FlaskClient  # keeps no cookies: each request says who calls
    sessions: dict[str, str]  # username -> session cookie (people log in)
    tokens: dict[str, str]  # "scanner" (a machine user's), "admin" (the admin's own)
    db: Session  # a separate session for checking what the API stored

    def as_(self, who: str | None) -> dict[str, str]:
        """Headers for a person logged in (a session cookie, logged in at first use), or
        nobody."""
        if who is None:
            return {}
        cookie = self.sessions.get(who) or self.log_in(who)
        return {"Cookie": f"{COOKIE}={cookie}"}

    def bearer(self, token: str) -> dict[str, str]:
        """Headers for a bearer token: "scanner" or "admin" (the admin's own), or a secret."""
        return {"Authorization": f"Bearer {self.tokens.get(token, token)}"}

    def log_in(self, username: str, password: str = "") -> str:
        """Log the person in (POST /api/session) and keep their session cookie."""
        client = self.app.test_client()
        answer = client.post(
            "/api/session", json={"username": username, "password": password or PASSWORD}
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)
        cookie = client.get_cookie(COOKIE, path="/api")
        assert cookie is not None
        self.sessions[username] = cookie.value
        return cookie.value


def seed(db: Session) -> dict[str, str]:
    db.info["actor"] = "test-setup"
    db.add_all(
        [
            Site(id="wh-a", name="Warehouse A", kind="warehouse"),
            Site(id="truck-7", name="Truck 7", kind="truck"),
            Site(id="wh-b", name="Warehouse B", kind="warehouse"),
            Site(id="st-marys", name="St Mary's Hospital", kind="customer"),
            Product(gtin=GTIN, name="mRNA vaccine vial", low=2, high=8, freeze_sensitive=True),
        ]
    )
    db.flush()
    db.add_all(
        [
            Zone(id="a-cold", site_id="wh-a", name="Cold room A", kind="cold_room", low=2, high=8),
            Zone(id="t7-reefer", site_id="truck-7", name="Reefer", kind="truck_compartment"),
            Zone(id="b-cold", site_id="wh-b", name="Cold room B", kind="cold_room", low=2, high=8),
            Zone(id="sm-pharmacy", site_id="st-marys", name="Pharmacy", kind="cold_room"),
            Gateway(id="wh-a-gw", site_id="wh-a"),
            Gateway(id="wh-b-gw", site_id="wh-b"),
            Batch(gtin=GTIN, lot="L1", expires_on=date(2027, 6, 30), quantity=100),
            Batch(gtin=GTIN, lot="L2", expires_on=date(2027, 6, 30), quantity=10, status="held"),
            Customer(id="st-marys", name="St Mary's Hospital", site_id="st-marys"),
        ]
    )
    db.flush()
    l1, l2 = db.scalars(select(Batch).order_by(Batch.lot)).all()
    db.add_all(
        [
            ReadPoint(
                id="a-cold-door",
                zone_id="a-cold",
                gateway_id="wh-a-gw",
                reader="r1",
                business_step="receiving",
            ),
            ReadPoint(
                id="b-cold-door",
                zone_id="b-cold",
                gateway_id="wh-b-gw",
                reader="r2",
                business_step="receiving",
            ),
            Order(id="PO-77", customer_id="st-marys", placed_at=at(0)),
            *(Item(gtin=GTIN, serial=str(n), epc=epc(n), batch_id=l1.id) for n in (1, 2, 3)),
            Item(gtin=GTIN, serial="9", epc=epc(9), batch_id=l2.id),
        ]
    )
    for username in PEOPLE:
        role = "admin" if username == "admin2" else username
        create_user(db, username, f"{username.title()} User", role, PASSWORD)
    create_user(db, "scanner", "Dock scanner 3", "operator", "machine-never-logs-in", "machine")
    admin = db.scalars(select(User).where(User.username == "admin")).one()
    tokens = {
        "scanner": issue_token(
            db, "scanner", "dock scanner 3", issuer=admin, scopes=SCANNER_SCOPES
        )[1],
        "admin": issue_token(
            db, "admin", "master data sync", issuer=admin, scopes=("read", "master-data")
        )[1],
    }
    db.commit()
    return tokens


@contextmanager
def running_api(pg_url: str) -> Iterator[Api]:
    """The seeded database and an API app on it (each test module's `api` fixture)."""
    engine = make_engine(pg_url)
    with session_factory(engine)() as db:
        tokens = seed(db)
        app = create_app(pg_url, {"TESTING": True, "SECRET_KEY": "test"})
        yield Api(app, app.test_client(use_cookies=False), {}, tokens, db)
    app.extensions[EXTENSION].kw["bind"].dispose()
    engine.dispose()


def signed_in(api: Api, username: str) -> FlaskClient:
    """A client of its own logged in as `username` (signatures are given in a session)."""
    client = api.app.test_client()
    response = client.post("/api/session", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return client


def release_for_shipment(api: Api, kind: str, ident: str, minutes: float) -> dict[str, Any]:
    """QA's signed release of a transfer or shipment for shipment (loading cold goods needs it)."""
    body = {
        "password": PASSWORD,
        "username": "qa",  # a fresh session's first signing takes the user ID too
        "reason": "evidence reviewed",
        "at": at(minutes).isoformat(),
    }
    response = signed_in(api, "qa").post(f"/api/{kind}s/{ident}/release", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()
