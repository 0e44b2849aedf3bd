"""QA's release for shipment as the control room shows it: each batch's temperature evidence
(stability budget left, MKT, open excursions) before signing, and who signed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cloud.adapters.orm.traceability import Shipment, Transfer
from cloud.service_layer import shipping_release as service
from cloud.service_layer.shipping_release import BatchEvidence
from cloud.service_layer.signatures import existing_user

MEANING_TEXT = (
    "I release these batches for shipment: I reviewed their temperature evidence (stability "
    "budget left, MKT, open excursions) and they are fit to load."
)


@dataclass(frozen=True)
class ReleaseCard:
    """A movement's release for shipment: needed or not, the evidence, the valid signature."""

    kind: str
    id: str
    movement: str
    state: str
    required: bool
    evidence: list[BatchEvidence]
    released_by: str | None  # printed name
    released_at: datetime | None
    signature_id: int | None


def _row(session: Session, kind: str, ident: str) -> Transfer | Shipment:
    row: Transfer | Shipment | None = None
    if kind == "transfer":
        row = session.get(Transfer, ident)
    elif kind == "shipment":
        row = session.get(Shipment, ident)
    if row is None:
        raise LookupError(f"{kind} {ident} does not exist")
    return row


def release_card(session: Session, row: Transfer | Shipment) -> ReleaseCard:
    """What QA sees before signing, and the valid release if there is one."""
    view = service.release_view(session, row)
    return ReleaseCard(
        kind="transfer" if isinstance(row, Transfer) else "shipment",
        id=row.id,
        movement=view.movement,
        state=row.state,
        required=view.required,
        evidence=view.evidence,
        released_by=view.signature.full_name if view.signature else None,
        released_at=view.signature.signed_at if view.signature else None,
        signature_id=view.signature.id if view.signature else None,
    )


def release_of(session: Session, kind: str, ident: str) -> ReleaseCard:
    """The release card of the transfer or shipment `ident`."""
    return release_card(session, _row(session, kind, ident))


def release(
    session: Session,
    kind: str,
    ident: str,
    username: str,
    password: str,
    reason: str,
    user_id: str | None = None,
) -> ReleaseCard:
    """QA signs the movement's release for shipment (meaning shipment_release); `user_id` is
    the signature's first component, needed for a session's first signing."""
    row = _row(session, kind, ident)
    user = existing_user(session, username)
    service.release_for_shipment(session, row, user, password, reason, username=user_id)
    return release_card(session, row)
