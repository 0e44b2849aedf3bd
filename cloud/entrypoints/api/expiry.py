"""Expiry warnings, FEFO pick suggestions, site approvals for temperature classes, and a
release gate check that answers before anyone tries to load."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, jsonify
from pydantic import Field

from cloud.adapters.orm.readings import Site
from cloud.domain.clock import utcnow
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.lookup import get_or_404
from cloud.entrypoints.api.problems import not_found, parse_body
from cloud.service_layer.expiry import expiry_tiers, fefo_suggestions
from cloud.service_layer.release_gate import destination_of, gate_reasons, set_site_approvals

bp = Blueprint("expiry", __name__, url_prefix="/api")
TemperatureClass = Literal["frozen", "2-8C", "15-25C", "uncontrolled"]  # cloud.domain.release_gate


class Approvals(Body):
    temperature_classes: list[TemperatureClass]


class GateCheck(Body):
    batch_ids: list[int] = Field(min_length=1)
    from_zone: str | None = None
    destination_site_id: str | None = None
    order_id: str | None = None


@bp.get("/expiry")
@endpoint("read")
def expiring() -> Any:
    """Batches in an expiry warning tier or expired, per site where their stock is."""
    rows = expiry_tiers(get_db(), utcnow())
    return jsonify(
        {
            "items": [
                {
                    "batch_id": r.batch_id,
                    "lot": r.lot,
                    "gtin": r.gtin,
                    "expires_on": r.expires_on.isoformat(),
                    "site_id": r.site_id,
                    "tier_days": r.tier,
                    "days_left": r.days_left,
                    "items": r.items,
                    "expired": r.expired,
                }
                for r in rows
            ]
        }
    )


@bp.get("/order-lines/<int:line_id>/fefo")
@endpoint("read")
def fefo(line_id: int) -> Any:
    """FEFO pick suggestion for an order line: batches to pick, and those passed over why."""
    try:
        found = fefo_suggestions(get_db(), line_id, utcnow())
    except LookupError as exc:
        raise not_found(f"order line {line_id}") from exc
    return jsonify(
        {
            "picks": [
                {
                    "batch_id": p.batch_id,
                    "lot": p.lot,
                    "quantity": p.quantity,
                    "expires_on": p.expires_on.isoformat(),
                }
                for p in found.picks
            ],
            "skipped": [
                {"batch_id": s.batch_id, "lot": s.lot, "reason": s.reason} for s in found.skipped
            ],
            "short_by": found.short_by,
        }
    )


def _approvals(site_id: str) -> list[str]:
    return sorted(destination_of(get_db(), site_id).approved or ())


@bp.get("/sites/<site_id>/approvals")
@endpoint("read")
def approvals(site_id: str) -> Any:
    """The temperature classes the site is approved to receive (none listed: unrestricted)."""
    get_or_404(get_db(), Site, site_id, f"site {site_id}")
    return jsonify({"site_id": site_id, "temperature_classes": _approvals(site_id)})


@bp.put("/sites/<site_id>/approvals")
@endpoint("master-data", body=Approvals)
def set_approvals(site_id: str) -> Any:
    """Replace the site's approved temperature classes (an audited change: give a reason)."""
    given = parse_body(Approvals)
    db = get_db()
    get_or_404(db, Site, site_id, f"site {site_id}")
    set_site_approvals(db, site_id, given.temperature_classes)
    db.commit()
    return jsonify({"site_id": site_id, "temperature_classes": _approvals(site_id)})


@bp.post("/release-gate/check")
@endpoint("read", body=GateCheck)
def check_gate() -> Any:
    """Every reason the release gate would refuse loading these batches (empty: may go)."""
    given = parse_body(GateCheck)
    reasons = gate_reasons(
        get_db(),
        given.batch_ids,
        given.from_zone,
        given.destination_site_id,
        order_id=given.order_id,
    )
    return jsonify({"may_load": not reasons, "reasons": [r.as_dict() for r in reasons]})
