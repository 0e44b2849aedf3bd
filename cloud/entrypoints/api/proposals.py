"""Master-data proposals (admin): what gateways' statuses described otherwise than master
data, accepted (the change is made, audited) or rejected, each with a reason."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, jsonify
from pydantic import Field

from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.pagination import Page, page_of
from cloud.entrypoints.api.problems import Problem, invalid, not_found, parse_body, parse_query
from cloud.service_layer.gateway_status import ProposalClosed, decide_proposal
from cloud.views.proposals import proposals

bp = Blueprint("proposals", __name__, url_prefix="/api/master-data-proposals")


class ProposalFilter(Page):
    state: Literal["pending", "accepted", "rejected", "withdrawn"] | None = None
    gateway_id: str | None = Field(None, max_length=64)


class Decision(Body):
    reason: str = Field(min_length=1, max_length=2000)


def proposal_json(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "gateway_id": p.gateway_id,
        "subject_kind": p.subject_kind,
        "subject_id": p.subject_id,
        "field": p.field,
        "current": p.current,
        "proposed": p.proposed,
        "first_seen_at": p.first_seen_at.isoformat(),
        "last_seen_at": p.last_seen_at.isoformat(),
        "state": p.state,
        "decided_by": p.decided_by,
        "decided_at": None if p.decided_at is None else p.decided_at.isoformat(),
        "reason": p.reason,
    }


@bp.get("")
@endpoint("master-data", query=ProposalFilter)
def list_proposals() -> Any:
    """Proposals, last seen first; filter by state and gateway."""
    given = parse_query(ProposalFilter)
    return page_of(proposals(given.state, given.gateway_id), given, proposal_json)


def _decide(proposal_id: int, accept: bool) -> Any:
    parse_body(Decision)  # the reason reaches the audit trail through the session
    db = get_db()
    try:
        proposal = decide_proposal(db, proposal_id, accept)
    except LookupError as exc:
        raise not_found(str(exc)) from exc
    except ProposalClosed as exc:
        raise Problem(409, "conflict", "Conflict", str(exc)) from exc
    except ValueError as exc:
        raise invalid(422, str(exc), [{"field": "proposed", "message": str(exc)}]) from exc
    db.commit()
    return jsonify(proposal_json(proposal))


@bp.post("/<int:proposal_id>/accept")
@endpoint("master-data", body=Decision)
def accept(proposal_id: int) -> Any:
    """Make the change to master data (an audited update with the reason)."""
    return _decide(proposal_id, True)


@bp.post("/<int:proposal_id>/reject")
@endpoint("master-data", body=Decision)
def reject(proposal_id: int) -> Any:
    """Leave master data as it is (recorded with the reason)."""
    return _decide(proposal_id, False)
