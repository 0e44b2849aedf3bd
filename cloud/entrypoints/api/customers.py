"""Customers (hospitals, pharmacies) and the site deliveries go to."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from pydantic import Field

from cloud.adapters.orm.readings import Site
from cloud.adapters.orm.traceability import Customer
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.pagination import Page
from cloud.entrypoints.api.problems import parse_body, parse_query
from cloud.entrypoints.api.records import Records
from cloud.views import records

bp = Blueprint("customers", __name__, url_prefix="/api/customers")
Gln = Field(None, pattern=r"^\d{13}$", description="Global Location Number, 13 digits")


class NewCustomer(Body):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    gln: str | None = Gln
    site_id: str | None = None


class CustomerChange(Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    gln: str | None = Gln
    site_id: str | None = None


def customer_json(c: Customer) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "gln": c.gln, "site_id": c.site_id}


CUSTOMERS = Records(Customer, "customer", customer_json, {"site_id": (Site, "site")})


@bp.get("")
@endpoint("read", query=Page)
def list_customers() -> Any:
    """Customers by id."""
    return CUSTOMERS.listing(records.customers(), parse_query(Page))


@bp.post("")
@endpoint("master-data", body=NewCustomer, status=201)
def create_customer() -> Any:
    """Register a customer."""
    return CUSTOMERS.create(parse_body(NewCustomer))


@bp.get("/<customer_id>")
@endpoint("read")
def get_customer(customer_id: str) -> Any:
    """One customer."""
    return CUSTOMERS.show(customer_id)


@bp.patch("/<customer_id>")
@endpoint("master-data", body=CustomerChange)
def change_customer(customer_id: str) -> Any:
    """Change a customer's name, GLN or delivery site (the fields given)."""
    return CUSTOMERS.change(customer_id, parse_body(CustomerChange))
