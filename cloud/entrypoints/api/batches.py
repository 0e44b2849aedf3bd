"""Batches (lots): list, read, register, put on hold, and their custody timeline."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from flask import Blueprint, current_app, jsonify
from pydantic import Field

from cloud.adapters.orm.traceability import Batch
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.lookup import get_or_404
from cloud.entrypoints.api.pagination import Page, TimeWindow, page_of, window_bounds
from cloud.entrypoints.api.problems import Problem, parse_body, parse_query
from cloud.entrypoints.api.records import register
from cloud.entrypoints.api.representations import batch_json, interval_json
from cloud.service_layer import rules
from cloud.service_layer.batch_status import WorkflowRequired, put_on_hold, refuse_direct
from cloud.service_layer.custody import batch_timeline_query
from cloud.service_layer.master_data import BatchRow
from cloud.views import records

bp = Blueprint("batches", __name__, url_prefix="/api/batches")


class BatchFilter(Page):
    gtin: str | None = None
    status: str | None = None
    expires_before: date | None = None


class NewBatch(BatchRow, Body):
    pass


class StatusChange(Body):
    """Only `held` is taken; the other statuses are named so the refusal can say where to go."""

    status: Literal["available", "held", "rejected", "recalled"]
    reason: str = Field(min_length=1)
    password: str | None = None  # unused: a release sent the old way is told where to go
    username: str | None = None  # unused, as the password


@bp.get("")
@endpoint("read", query=BatchFilter)
def list_batches() -> Any:
    """Batches, soonest expiry first; filter by gtin, status, expires_before."""
    given = parse_query(BatchFilter)
    query = records.batches(given.gtin, given.status, given.expires_before)
    return page_of(query, given, batch_json)


@bp.post("")
@endpoint("master-data", body=NewBatch, status=201)
def create_batch() -> Any:
    """Register a batch of a product."""
    return register("batches", parse_body(NewBatch), batch_json)


@bp.get("/<int:batch_id>")
@endpoint("read")
def get_batch(batch_id: int) -> Any:
    """One batch."""
    return jsonify(batch_json(get_or_404(get_db(), Batch, batch_id, f"batch {batch_id}")))


@bp.post("/<int:batch_id>/status")
@endpoint("hold", body=StatusChange)
def change_status(batch_id: int) -> Any:
    """Put a batch on hold (QA, with a reason): a manual hold, decided later through its
    disposition. Release, rejection and recall follow their workflows: refused here (409)
    with the hold or recall route to use."""
    given = parse_body(StatusChange)
    db = get_db()
    batch = get_or_404(db, Batch, batch_id, f"batch {batch_id}")
    try:
        if given.status != "held":
            raise refuse_direct(db, batch, given.status)
        hold = put_on_hold(db, batch, given.reason)
    except WorkflowRequired as exc:
        extra = {k: v for k, v in (("hold_id", exc.hold_id), ("route", exc.route)) if v}
        raise Problem(
            409, "workflow-required", "Use the workflow", workflow_detail(batch, exc), **extra
        ) from exc
    db.commit()
    return jsonify({**batch_json(batch), "hold_id": hold.id})


def workflow_detail(batch: Batch, refused: WorkflowRequired) -> str:
    """Why the change was refused; a hold that takes two QA says so (no way round them)."""
    configured = current_app.config["TWO_PERSON_REASONS"]
    if refused.hold_id in {h.id for h in rules.two_person_holds(get_db(), batch.id, configured)}:
        return (
            f"{refused}; hold {refused.hold_id} takes two QA signatures: a review, then "
            "another QA's approval"
        )
    return str(refused)


@bp.get("/<int:batch_id>/custody")
@endpoint("read", query=TimeWindow)
def batch_custody(batch_id: int) -> Any:
    """Where every item of the batch was, by item, oldest first; from/to narrow it."""
    window = parse_query(TimeWindow)
    start, end = window_bounds(window)
    db = get_db()
    get_or_404(db, Batch, batch_id, f"batch {batch_id}")
    return page_of(batch_timeline_query(batch_id, start, end, rows=True), window, interval_json)
