"""A batch's status follows its workflows only: it is held through a hold, becomes available
or rejected only through that hold's signed disposition (cloud.service_layer.rules.
disposition), and recalled only through a signed recall (cloud.service_layer.recall).

`put_on_hold` is the one change taken directly: QA opens a manual hold, which QA then
dispositions like any other. Any other wish is refused with the workflow to use instead.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import Hold
from cloud.adapters.orm.traceability import Batch
from cloud.domain import holds as hold_rules
from cloud.domain.clock import utcnow
from cloud.service_layer.audit import audit_reason

log = logging.getLogger(__name__)
FINAL = frozenset({"rejected", "recalled"})


class WorkflowRequired(Exception):
    """A status change that only a workflow may make: the detail says which, and where."""

    def __init__(self, detail: str, *, hold_id: int | None = None, route: str | None = None):
        super().__init__(detail)
        self.hold_id, self.route = hold_id, route


def undecided_hold(session: Session, batch_id: int) -> Hold | None:
    """The batch's hold waiting for QA (open or under investigation), if any."""
    return session.scalars(
        select(Hold)
        .where(Hold.batch_id == batch_id, Hold.status.in_(hold_rules.UNDECIDED))
        .order_by(Hold.id)
    ).first()


def put_on_hold(session: Session, batch: Batch, reason: str) -> Hold:
    """Open a manual hold on the batch (audited with the reason); QA dispositions it later."""
    if batch.status in FINAL:
        raise WorkflowRequired(f"batch {batch.lot} is {batch.status}: it is not held again")
    hold = undecided_hold(session, batch.id)
    if hold is not None:
        raise WorkflowRequired(
            f"batch {batch.lot} is under hold {hold.id} already; decide it through "
            f"POST /api/holds/{hold.id}/disposition",
            hold_id=hold.id,
            route=f"/api/holds/{hold.id}/disposition",
        )
    with audit_reason(session, reason):
        hold = Hold(
            batch_id=batch.id, reason=f"manual hold: {reason}", opened_at=utcnow(), status="open"
        )
        session.add(hold)
        batch.status = "held"
        session.flush()
    log.info("batch %s put on hold %s: %s", batch.lot, hold.id, reason)
    return hold


def refuse_direct(session: Session, batch: Batch, wanted: str) -> WorkflowRequired:
    """Why the batch cannot be set to `wanted` directly, naming the workflow that can."""
    if wanted == "recalled":
        return WorkflowRequired(
            f"batch {batch.lot} is recalled only by opening a recall: POST /api/recalls with "
            f"batch_id {batch.id}, a reason and your password (signed)",
            route="/api/recalls",
        )
    hold = undecided_hold(session, batch.id)
    decision = {"available": "release", "rejected": "reject"}.get(wanted, wanted)
    if hold is not None:
        route = f"/api/holds/{hold.id}/disposition"
        return WorkflowRequired(
            f"batch {batch.lot} is under hold {hold.id}: {decision} it through POST {route} "
            "(signed), which changes the batch's status",
            hold_id=hold.id,
            route=route,
        )
    if batch.status in FINAL:
        return WorkflowRequired(f"batch {batch.lot} is {batch.status}: a final status")
    if batch.status == wanted:
        return WorkflowRequired(f"batch {batch.lot} is {wanted} already")
    return WorkflowRequired(
        f"batch {batch.lot} is {batch.status} with no open hold: a {decision} is a hold's "
        "disposition; put the batch on hold (status held) and decide that hold through "
        "POST /api/holds/<id>/disposition",
        route="/api/holds",
    )
