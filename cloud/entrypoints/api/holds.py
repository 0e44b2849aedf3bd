"""Excursions, a batch's exposures, and holds with QA's signed disposition."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from flask import Blueprint, current_app, g, jsonify
from pydantic import Field

from cloud.adapters.orm.quality import Excursion, ExcursionKind, Exposure, Hold
from cloud.adapters.orm.traceability import Batch
from cloud.domain.holds import UNDECIDED, DispositionError
from cloud.entrypoints.api.auth import before_signing
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.lookup import get_or_404
from cloud.entrypoints.api.pagination import Page, TimeWindow, page_of, window_bounds
from cloud.entrypoints.api.problems import Problem, invalid, parse_body, parse_query
from cloud.entrypoints.api.representations import signature_json
from cloud.service_layer import rules
from cloud.service_layer.signatures import SignatureRefused, signatures_on
from cloud.views import holds as quality

excursions_bp = Blueprint("excursions", __name__, url_prefix="/api/excursions")
holds_bp = Blueprint("holds", __name__, url_prefix="/api/holds")
exposures_bp = Blueprint("exposures", __name__, url_prefix="/api/batches")
BLUEPRINTS = (excursions_bp, holds_bp, exposures_bp)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def excursion_json(e: Excursion) -> dict[str, Any]:
    return {
        "id": e.id,
        "zone_id": e.zone_id,
        "profile_id": e.profile_id,
        "rule": e.rule,
        "kind": e.kind,
        "level": e.level,
        "started_at": _iso(e.started_at),
        "ended_at": _iso(e.ended_at),
        "peak": e.peak,
        "limit": e.limit,
        "state": e.state,
        "suppressed_reason": e.suppressed_reason,
        "detected_at": _iso(e.detected_at),
        "evidence_note": e.evidence_note,
    }


def exposure_json(x: Exposure) -> dict[str, Any]:
    return {
        "id": x.id,
        "excursion_id": x.excursion_id,
        "batch_id": x.batch_id,
        "items": x.items,
        "minutes": x.minutes,
        "min_value": x.min_value,
        "max_value": x.max_value,
        "degree_minutes": x.degree_minutes,
        "started_at": _iso(x.started_at),
        "ended_at": _iso(x.ended_at),
        "evidence_note": x.evidence_note,
    }


def hold_json(h: Hold) -> dict[str, Any]:
    db = get_db()
    because = rules.two_person_because(db, h, current_app.config["TWO_PERSON_REASONS"])
    reviewer = rules.reviewer_of(db, h)
    awaiting = None
    if h.status in UNDECIDED:
        awaiting = ("approval" if reviewer else "review") if because else "decision"
    return {
        "id": h.id,
        "batch_id": h.batch_id,
        "reason": h.reason,
        "excursion_id": h.excursion_id,
        "opened_at": _iso(h.opened_at),
        "status": h.status,
        "decided_at": _iso(h.decided_at),
        "decided_by": h.decided_by,
        "signature_id": h.signature_id,
        "decision_reason": h.decision_reason,
        "evidence_note": h.evidence_note,
        "two_person": bool(because),
        "two_person_because": because,
        "reviewed_by": None if reviewer is None else reviewer.username,
        "reviewed_by_name": None if reviewer is None else reviewer.full_name,
        "reviewed_at": _iso(h.reviewed_at),
        "awaiting": awaiting,
        "signatures": [signature_json(s) for s in signatures_on(db, h)],
    }


class ExcursionFilter(TimeWindow):
    zone_id: str | None = None
    kind: ExcursionKind | None = None
    state: Literal["open", "closed"] | None = None


@excursions_bp.get("")
@endpoint("read", query=ExcursionFilter)
def list_excursions() -> Any:
    """Excursions, newest first; filter by zone_id, kind, state and the window from/to."""
    given = parse_query(ExcursionFilter)
    start, end = window_bounds(given)
    query = quality.excursions(given.zone_id, given.kind, given.state, start, end)
    return page_of(query, given, excursion_json)


@excursions_bp.get("/<int:excursion_id>")
@endpoint("read")
def get_excursion(excursion_id: int) -> Any:
    """One excursion with the exposures of the batches present during it."""
    db = get_db()
    excursion = get_or_404(db, Excursion, excursion_id, f"excursion {excursion_id}")
    exposures = quality.exposures_of(db, excursion_id)
    return jsonify(
        {**excursion_json(excursion), "exposures": [exposure_json(x) for x in exposures]}
    )


@exposures_bp.get("/<int:batch_id>/exposures")
@endpoint("read")
def batch_exposures(batch_id: int) -> Any:
    """A batch's exposures across every zone, its remaining stability budget and its MKT."""
    db = get_db()
    get_or_404(db, Batch, batch_id, f"batch {batch_id}")
    found = rules.batch_exposures(db, batch_id)
    return jsonify(
        {
            "batch_id": batch_id,
            "remaining_budget_min": rules.remaining_budget(db, batch_id),
            "mkt_c": rules.mkt_for_batch(db, batch_id),
            "exposures": [{**exposure_json(x), "excursion": excursion_json(e)} for x, e in found],
        }
    )


class HoldFilter(Page):
    status: Literal["open", "investigating", "released", "rejected"] | None = None
    batch_id: int | None = None


@holds_bp.get("")
@endpoint("read", query=HoldFilter)
def list_holds() -> Any:
    """Holds, oldest first; filter by status and batch_id."""
    given = parse_query(HoldFilter)
    return page_of(quality.holds(given.status, given.batch_id), given, hold_json)


@holds_bp.get("/<int:hold_id>")
@endpoint("read")
def get_hold(hold_id: int) -> Any:
    """One hold."""
    return jsonify(hold_json(get_or_404(get_db(), Hold, hold_id, f"hold {hold_id}")))


class Disposition(Body):
    """Release, reject and review are electronic signatures: give your password again.
    A two-person hold is reviewed by one QA, then released (approval) or rejected by another."""

    decision: Literal["release", "reject", "investigate", "review"]
    reason: str = Field(min_length=1)
    password: str | None = None
    username: str | None = None  # the user ID: needed for the first signing in a session
    meaning: Literal["release", "rejection", "review", "approval"] | None = None


@holds_bp.post("/<int:hold_id>/disposition")
@endpoint("disposition", body=Disposition)
def disposition(hold_id: int) -> Any:
    """QA decides a hold: release, reject (both signed) or keep under investigation; a
    two-person hold is first reviewed (signed) and then decided by another QA."""
    given = parse_body(Disposition)
    db = get_db()
    get_or_404(db, Hold, hold_id, f"hold {hold_id}")
    if given.decision != "investigate" and not given.password:
        raise invalid(
            422,
            f"a {given.decision} is an electronic signature: give your password again",
            [{"field": "password", "message": f"required to sign a {given.decision}"}],
        )
    if given.decision != "investigate":
        before_signing(given.username)
    try:
        hold = rules.disposition_hold(
            db,
            hold_id,
            given.decision,
            g.user,
            given.password,
            given.meaning,
            given.reason,
            current_app.config["TWO_PERSON_REASONS"],
            username=given.username,
        )
    except SignatureRefused as exc:
        raise Problem(403, "signature-refused", "Signature refused", str(exc)) from exc
    except DispositionError as exc:
        raise Problem(409, "illegal-transition", "Illegal transition", str(exc)) from exc
    db.commit()
    return jsonify(hold_json(hold))
