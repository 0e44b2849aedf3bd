"""Starting a recall from the control room: a signed approval by QA (cloud.service_layer.recall);
and the recalls the API lists."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

import cloud.service_layer.recall as recall_service
from cloud.adapters.orm.alerting import Recall
from cloud.service_layer.signatures import existing_user

MEANING = "approval"
MEANING_TEXT = (
    "I approve the recall of this batch: every item is traced and frozen, and customers "
    "holding it are to be contacted."
)


def start(
    session: Session,
    batch_id: int,
    username: str,
    password: str,
    reason: str,
    user_id: str | None = None,
) -> str:
    """Open a recall of the batch signed by the user (`user_id`: the signature's first
    component, for the first signing of a session); what happened, in words."""
    user = existing_user(session, username)
    recall = recall_service.open_recall(session, batch_id, user, password, reason, username=user_id)
    return f"recall {recall.id} opened; the batch is recalled and every item traced"


def recalls() -> Select[Recall]:
    """Recalls, newest first."""
    return select(Recall).order_by(Recall.opened_at.desc(), Recall.id.desc())
