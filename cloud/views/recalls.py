"""Starting a recall from the control room: a signed approval by QA (cloud.service_layer.recall)."""

from __future__ import annotations

from sqlalchemy.orm import Session

import cloud.service_layer.recall as recall_service
from cloud.service_layer.signatures import existing_user

MEANING = "approval"
MEANING_TEXT = (
    "I approve the recall of this batch: every item is traced and frozen, and customers "
    "holding it are to be contacted."
)


def start(session: Session, batch_id: int, username: str, password: str, reason: str) -> str:
    """Open a recall of the batch signed by the user; returns what happened, in words."""
    user = existing_user(session, username)
    recall = recall_service.open_recall(session, batch_id, user, password, reason)
    return f"recall {recall.id} opened; the batch is recalled and every item traced"
