"""Batches (lots): list, read, register, QA status changes, and their custody timeline."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from flask import Blueprint, current_app, g, jsonify
from pydantic import Field

from cloud.adapters.orm.traceability import Batch
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.lookup import get_or_404
from cloud.entrypoints.api.pagination import Page, TimeWindow, page_of, window_bounds
from cloud.entrypoints.api.problems import Problem, invalid, parse_body, parse_query
from cloud.entrypoints.api.records import register
from cloud.entrypoints.api.representations import batch_json, interval_json, signature_json
from cloud.service_layer import rules
from cloud.service_layer.custody import batch_timeline_query
from cloud.service_layer.master_data import BatchRow
from cloud.service_layer.signatures import SignatureRefused, sign
from cloud.views import records

bp = Blueprint("batches", __name__, url_prefix="/api/batches")
FINAL = frozenset({"rejected", "recalled"})  # a disposition QA cannot take back here
SIGNED = {"available": "release", "rejected": "rejection"}  # status -> signature meaning


class BatchFilter(Page):
    gtin: str | None = None
    status: str | None = None
    expires_before: date | None = None


class NewBatch(BatchRow, Body):
    pass


class StatusChange(Body):
    """Release (available) and reject need the caller's password again: they are signed."""

    status: Literal["available", "held", "rejected", "recalled"]
    reason: str = Field(min_length=1)
    password: str | None = None


@bp.get("")
@endpoint("viewer", query=BatchFilter)
def list_batches() -> Any:
    """Batches, soonest expiry first; filter by gtin, status, expires_before."""
    given = parse_query(BatchFilter)
    query = records.batches(given.gtin, given.status, given.expires_before)
    return page_of(query, given, batch_json)


@bp.post("")
@endpoint("admin", body=NewBatch, status=201)
def create_batch() -> Any:
    """Register a batch of a product."""
    return register("batches", parse_body(NewBatch), batch_json)


@bp.get("/<int:batch_id>")
@endpoint("viewer")
def get_batch(batch_id: int) -> Any:
    """One batch."""
    return jsonify(batch_json(get_or_404(get_db(), Batch, batch_id, f"batch {batch_id}")))


@bp.post("/<int:batch_id>/status")
@endpoint("qa", body=StatusChange)
def change_status(batch_id: int) -> Any:
    """Hold, release, reject or recall a batch (QA; a reason; release and reject are signed)."""
    given = parse_body(StatusChange)
    db = get_db()
    batch = get_or_404(db, Batch, batch_id, f"batch {batch_id}")
    if batch.status in FINAL and given.status != batch.status:
        raise Problem(
            409, "illegal-transition", "Illegal transition", f"batch {batch.lot} is {batch.status}"
        )
    reasons = current_app.config["TWO_PERSON_REASONS"]
    if given.status == "available":  # no way round the two people a hold needs
        if blocking := rules.two_person_holds(db, batch.id, reasons):
            hold = blocking[0]
            raise Problem(
                409,
                "two-person-release",
                "Two-person release",
                f"batch {batch.lot} has hold {hold.id} open, which takes two QA signatures: "
                f"release it through the hold (a review, then another QA's approval)",
            )
    meaning = SIGNED.get(given.status)
    if meaning is not None and not given.password:
        raise invalid(
            422,
            f"a {meaning} is an electronic signature: give your password again",
            [{"field": "password", "message": f"required to sign a {meaning}"}],
        )
    batch.status = given.status
    body = batch_json(batch)
    if meaning is not None:
        try:
            signature = sign(db, g.user, given.password or "", batch, meaning, given.reason)
        except SignatureRefused as exc:
            raise Problem(403, "signature-refused", "Signature refused", str(exc)) from exc
        body["signature"] = signature_json(signature)
    db.commit()
    return jsonify(body)


@bp.get("/<int:batch_id>/custody")
@endpoint("viewer", query=TimeWindow)
def batch_custody(batch_id: int) -> Any:
    """Where every item of the batch was, by item, oldest first; from/to narrow it."""
    window = parse_query(TimeWindow)
    start, end = window_bounds(window)
    db = get_db()
    get_or_404(db, Batch, batch_id, f"batch {batch_id}")
    return page_of(batch_timeline_query(batch_id, start, end, rows=True), window, interval_json)
