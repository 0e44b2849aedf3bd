"""Products (GTINs with their storage profile): list, read, create, change."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, jsonify
from pydantic import Field

from cloud.adapters.orm.traceability import Product
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.lookup import get_or_404
from cloud.entrypoints.api.pagination import Page, page_of
from cloud.entrypoints.api.problems import Problem, parse_body, parse_query
from cloud.entrypoints.api.records import register
from cloud.entrypoints.api.representations import product_json
from cloud.service_layer.master_data import ProductRow
from cloud.views import records

bp = Blueprint("products", __name__, url_prefix="/api/products")


class NewProduct(ProductRow, Body):
    pass


class ProductChange(Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    low: float | None = None
    high: float | None = None
    freeze_sensitive: bool | None = None
    humidity_max: float | None = None
    stability_budget_min: int | None = Field(None, ge=0)
    shelf_life_days: int | None = Field(None, ge=1)
    risk_class: Literal["standard", "high"] | None = None


@bp.get("")
@endpoint("read", query=Page)
def list_products() -> Any:
    """Products by GTIN."""
    page = parse_query(Page)
    return page_of(records.products(), page, product_json)


@bp.post("")
@endpoint("master-data", body=NewProduct, status=201)
def create_product() -> Any:
    """Register a product."""
    given = parse_body(NewProduct)
    # A product that exists is a conflict here (the CSV import lists it as a row error).
    if get_db().get(Product, given.gtin) is not None:
        raise Problem(409, "conflict", "Conflict", f"product {given.gtin} exists already")
    return register("products", given, product_json)


@bp.get("/<gtin>")
@endpoint("read")
def get_product(gtin: str) -> Any:
    """One product."""
    return jsonify(product_json(get_or_404(get_db(), Product, gtin, f"product {gtin}")))


@bp.patch("/<gtin>")
@endpoint("master-data", body=ProductChange)
def change_product(gtin: str) -> Any:
    """Change a product's profile (the fields given)."""
    given = parse_body(ProductChange)
    db = get_db()
    product = get_or_404(db, Product, gtin, f"product {gtin}")
    changes = given.model_dump(exclude={"reason"}, exclude_unset=True)
    if "risk_class" in changes and changes["risk_class"] is None:
        raise Problem(422, "validation", "Invalid request", "risk_class is standard or high")
    for field, value in changes.items():
        setattr(product, field, value)
    low, high = product.low, product.high
    if low is not None and high is not None and low >= high:
        raise Problem(422, "validation", "Invalid request", f"low {low} is not below high {high}")
    db.commit()
    return jsonify(product_json(product))
