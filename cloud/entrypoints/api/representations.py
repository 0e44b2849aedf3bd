"""How records look in JSON responses."""

from __future__ import annotations

from typing import Any

from cloud.adapters.orm.people import ApiToken, Signature, User
from cloud.adapters.orm.traceability import Batch, CustodyInterval, Item, Product, Scan
from cloud.service_layer.signatures import signature_manifest


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def product_json(p: Product) -> dict[str, Any]:
    return {
        "gtin": p.gtin,
        "name": p.name,
        "low": p.low,
        "high": p.high,
        "freeze_sensitive": p.freeze_sensitive,
        "humidity_max": p.humidity_max,
        "stability_budget_min": p.stability_budget_min,
        "shelf_life_days": p.shelf_life_days,
        "risk_class": p.risk_class,
    }


def batch_json(b: Batch) -> dict[str, Any]:
    return {
        "id": b.id,
        "gtin": b.gtin,
        "lot": b.lot,
        "manufactured_on": _time(b.manufactured_on),
        "expires_on": _time(b.expires_on),
        "quantity": b.quantity,
        "status": b.status,
    }


def item_json(i: Item) -> dict[str, Any]:
    return {
        "id": i.id,
        "gtin": i.gtin,
        "serial": i.serial,
        "epc": i.epc,
        "batch_id": i.batch_id,
        "element_string": f"(01){i.gtin}(21){i.serial}",
    }


def interval_json(c: CustodyInterval) -> dict[str, Any]:
    return {
        "item_id": c.item_id,
        "zone_id": c.zone_id,
        "started_at": _time(c.started_at),
        "ended_at": _time(c.ended_at),
        "basis": c.basis,
    }


def scan_json(s: Scan) -> dict[str, Any]:
    return {
        "id": s.id,
        "read_point_id": s.read_point_id,
        "scanned_at": _time(s.scanned_at),
        "data": s.data,
        "gtin": s.gtin,
        "serial": s.serial,
        "lot": s.lot,
        "sscc": s.sscc,
        "actor": s.actor,
    }


def user_json(u: User) -> dict[str, Any]:
    return {
        "username": u.username,
        "full_name": u.full_name,
        "kind": u.kind,
        "role": u.role,
        "pending_role": u.pending_role,
        "active": u.active,
    }


def token_json(t: ApiToken, username: str, issuer: str | None) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "username": username,
        "hint": t.hint,
        "scopes": t.scopes.split(),
        "created_at": _time(t.created_at),
        "expires_at": _time(t.expires_at),
        "revoked_at": _time(t.revoked_at),
        "issued_by": issuer,
    }


def signature_json(s: Signature) -> dict[str, Any]:
    return {
        "id": s.id,
        "username": s.username,
        "full_name": s.full_name,
        "meaning": s.meaning,
        "reason": s.reason,
        "signed_at": _time(s.signed_at),
        "record": f"{s.record_table} {s.record_key}",
        "record_hash": s.record_hash,  # SHA-256 of the record as signed
        "manifest": signature_manifest(s),
    }
