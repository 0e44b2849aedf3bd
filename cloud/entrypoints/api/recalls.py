"""Recalls: QA opens one for a batch with a signature; the trace of every item, and the
reports for the regulator (CSV and PDF)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify
from pydantic import Field

from cloud.adapters.orm.alerting import Recall
from cloud.entrypoints.api.auth import before_signing
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.pagination import Page, page_of
from cloud.entrypoints.api.problems import Problem, not_found, parse_body, parse_query
from cloud.entrypoints.api.representations import signature_json
from cloud.service_layer.recall import RecallRefused, open_recall, trace
from cloud.service_layer.reports import recall_csv, recall_pdf
from cloud.service_layer.signatures import SignatureRefused
from cloud.views import recalls as recall_views

bp = Blueprint("recalls", __name__, url_prefix="/api/recalls")


class NewRecall(Body):
    batch_id: int
    reason: str = Field(min_length=1)
    password: str = Field(min_length=1)  # the signature's second component
    username: str | None = None  # its first, needed for the first signing in a session


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def recall_json(r: Recall) -> dict[str, Any]:
    return {
        "id": r.id,
        "batch_id": r.batch_id,
        "reason": r.reason,
        "state": r.state,
        "opened_at": _time(r.opened_at),
        "previous_status": r.previous_status,
    }


def _trace_json(recall_id: int) -> dict[str, Any]:
    try:
        found = trace(get_db(), recall_id)
    except LookupError as exc:
        raise not_found(f"recall {recall_id}") from exc
    return {
        **recall_json(found.recall),
        "lot": found.batch.lot,
        "gtin": found.batch.gtin,
        "signatures": [signature_json(s) for s in found.signatures],
        "items": [
            {
                "element_string": f"(01){t.item.gtin}(21){t.item.serial}",
                "epc": t.item.epc,
                "disposition": t.record.disposition,
                "zone_id": t.record.zone_id,
                "site_id": t.record.site_id,
                "customer_id": t.record.customer_id,
                "shipment_id": t.record.shipment_id,
                "since": _time(t.record.since),
                "custody": [
                    {"zone_id": c.zone_id, "from": _time(c.started_at), "to": _time(c.ended_at)}
                    for c in t.custody
                ],
            }
            for t in found.items
        ],
        "exposures": [
            {
                "excursion_id": x.id,
                "zone_id": x.zone_id,
                "kind": x.kind,
                "level": x.level,
                "minutes": e.minutes,
                "min_value": e.min_value,
                "max_value": e.max_value,
                "from": _time(e.started_at),
                "to": _time(e.ended_at),
            }
            for e, x in found.exposures
        ],
    }


@bp.get("")
@endpoint("read", query=Page)
def list_recalls() -> Any:
    """Recalls, newest first."""
    return page_of(recall_views.recalls(), parse_query(Page), recall_json)


@bp.post("")
@endpoint("recall", body=NewRecall, status=201)
def create_recall() -> Any:
    """Open a recall of a batch (signed: give your password again): its stock is frozen."""
    given = parse_body(NewRecall)
    before_signing(given.username)
    db = get_db()
    try:
        recall = open_recall(
            db, given.batch_id, g.user, given.password, given.reason, username=given.username
        )
    except SignatureRefused as exc:
        raise Problem(403, "signature-refused", "Signature refused", str(exc)) from exc
    except RecallRefused as exc:
        status = 404 if "does not exist" in str(exc) else 409
        raise Problem(status, "recall-refused", "Recall refused", str(exc)) from exc
    db.commit()
    return jsonify(_trace_json(recall.id)), 201


@bp.get("/<int:recall_id>")
@endpoint("read")
def get_recall(recall_id: int) -> Any:
    """The recall with every item's whereabouts, custody history and the batch's exposures."""
    return jsonify(_trace_json(recall_id))


def _report(recall_id: int, kind: str) -> Response:
    db = get_db()
    if db.get(Recall, recall_id) is None:
        raise not_found(f"recall {recall_id}")
    name = f"recall-{recall_id}.{kind}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if kind == "csv":
        return Response(recall_csv(db, recall_id), mimetype="text/csv", headers=headers)
    return Response(recall_pdf(db, recall_id), mimetype="application/pdf", headers=headers)


@bp.get("/<int:recall_id>/report.csv")
@endpoint("recall-report")
def report_csv(recall_id: int) -> Any:
    """The recall report for the regulator as CSV: one row per item."""
    return _report(recall_id, "csv")


@bp.get("/<int:recall_id>/report.pdf")
@endpoint("recall-report")
def report_pdf(recall_id: int) -> Any:
    """The recall report for the regulator as PDF."""
    return _report(recall_id, "pdf")
