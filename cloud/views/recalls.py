"""Starting a recall from the control room: a signed approval by QA (cloud.service_layer.recall)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

import cloud.service_layer.recall as recall_service
from cloud.adapters.orm.people import User

MEANING = "approval"
MEANING_TEXT = (
    "I approve the recall of this batch: every item is traced and frozen, and customers "
    "holding it are to be contacted."
)


def start(session: Session, batch_id: int, username: str, password: str, reason: str) -> str:
    """Open a recall of the batch signed by the user; returns what happened, in words."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise LookupError(f"user {username!r} does not exist")
    recall = recall_service.open_recall(session, batch_id, user, password, reason)
    return f"recall {recall.id} opened; the batch is recalled and every item traced"
