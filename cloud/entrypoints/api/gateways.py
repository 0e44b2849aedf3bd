"""Gateways: health from the latest heartbeat and the records each has lost."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from cloud.entrypoints.api.contract import Query, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.problems import not_found, parse_query
from cloud.views import gateways as view

bp = Blueprint("gateways", __name__, url_prefix="/api/gateways")


class GatewayFilter(Query):
    site_id: str | None = None


@bp.get("")
@endpoint("read", query=GatewayFilter)
def list_gateways() -> Any:
    """Every gateway by id (filter by site): last heartbeat, buffer depth, age of the oldest
    unsent record, dropped records, clock state, free disk and the missing seq ranges."""
    given = parse_query(GatewayFilter)
    return jsonify({"items": [g.as_json() for g in view.gateways(get_db(), given.site_id)]})


@bp.get("/<gateway_id>")
@endpoint("read")
def get_gateway(gateway_id: str) -> Any:
    """One gateway's health and missing seq ranges."""
    found = view.gateway(get_db(), gateway_id)
    if found is None:
        raise not_found(f"gateway {gateway_id!r}")
    return jsonify(found.as_json())
