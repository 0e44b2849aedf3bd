"""What people decide on the rules' results: QA's disposition of a hold (signed release or
rejection, or investigation) and a suppression window an operator records for a zone."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.people import User
from cloud.adapters.orm.quality import Hold, SuppressionWindow, ZoneRuleState
from cloud.adapters.orm.traceability import Batch, Product
from cloud.domain import holds as hold_rules
from cloud.domain.clock import utcnow
from cloud.domain.late_data import reevaluate_zone
from cloud.service_layer.audit import audit_reason
from cloud.service_layer.rules.config import _suppressions
from cloud.service_layer.rules.evaluation import _apply
from cloud.service_layer.rules.history import _History
from cloud.service_layer.rules.outcome import RulesOutcome, _as_system
from cloud.service_layer.rules.profiles import zone_profiles
from cloud.service_layer.rules.states import _save_state
from cloud.service_layer.signatures import existing_user, sign

log = logging.getLogger(__package__)  # the package's name: log lines read as they always did


def open_holds(session: Session) -> list[Hold]:
    """Holds waiting for QA (open or under investigation), oldest first."""
    return list(
        session.scalars(
            select(Hold)
            .where(Hold.status.in_(hold_rules.UNDECIDED))
            .order_by(Hold.opened_at, Hold.id)
        )
    )


def _user(session: Session, user: User | str | int) -> User:
    if isinstance(user, User):
        return user
    if isinstance(user, str):
        return existing_user(session, user)
    found = session.get(User, user)
    if found is None:
        raise LookupError(f"user {user!r} does not exist")
    return found


def two_person_because(
    session: Session, hold: Hold, configured: frozenset[str] = hold_rules.TWO_PERSON_REASONS
) -> list[str]:
    """Why the hold needs two QA signatures (its product's risk class, its reasons)."""
    batch = session.get(Batch, hold.batch_id)
    product = session.get(Product, batch.gtin) if batch is not None else None
    risk = product.risk_class if product is not None else "standard"
    return hold_rules.two_person_because(risk, hold.reason, configured)


def two_person_holds(
    session: Session, batch_id: int, configured: frozenset[str] = hold_rules.TWO_PERSON_REASONS
) -> list[Hold]:
    """The batch's undecided holds that take two QA (its release goes through them)."""
    query = select(Hold).where(Hold.batch_id == batch_id, Hold.status.in_(hold_rules.UNDECIDED))
    return [
        h
        for h in session.scalars(query.order_by(Hold.id))
        if two_person_because(session, h, configured)
    ]


def reviewer_of(session: Session, hold: Hold) -> User | None:
    """The QA who signed the review of a two-person hold, or None."""
    return None if hold.reviewed_by is None else session.get(User, hold.reviewed_by)


def disposition_hold(
    session: Session,
    hold_id: int,
    decision: str,
    user: User | str | int,
    password: str | None,
    meaning: str | None = None,
    reason: str = "",
    two_person_reasons: frozenset[str] = hold_rules.TWO_PERSON_REASONS,
    *,
    username: str | None = None,
) -> Hold:
    """QA decides a hold: release and reject are signed (password, and `username` as the user
    ID when signatures.sign needs it), investigate is not.

    A hold of a high-risk product, or for a reason configured so, takes two QA: one signs the
    review (the hold stays undecided), another signs the approval (release) or rejection."""
    hold = session.get(Hold, hold_id, with_for_update=True)
    if hold is None:
        raise LookupError(f"hold {hold_id} does not exist")
    if not reason.strip():
        raise hold_rules.DispositionError("a disposition needs a reason")
    signer = _user(session, user)
    reviewer = reviewer_of(session, hold)
    who = hold_rules.Signatories(
        two_person=bool(two_person_because(session, hold, two_person_reasons)),
        reviewed_by=reviewer.username if reviewer is not None else None,
        signer=signer.username,
    )
    status, needed = hold_rules.decide(hold.status, decision, meaning, who)
    if needed is not None and not password:
        raise hold_rules.DispositionError(f"a {decision} needs your password to sign it")
    with audit_reason(session, reason):
        if decision == "review":
            assert password is not None
            hold.reviewed_at, hold.reviewed_by = utcnow(), signer.id
            sign(session, signer, password, hold, "review", reason, username=username)
            session.flush()
            log.info("hold %s reviewed by %s: awaiting approval", hold_id, signer.username)
            return hold
        hold.status = status
        hold.decision_reason = reason
        if needed is not None:
            assert password is not None
            hold.decided_at, hold.decided_by = utcnow(), signer.id
            signature = sign(session, signer, password, hold, needed, reason, username=username)
            hold.signature_id = signature.id  # the link; the signature covers the decision
        batch = session.get(Batch, hold.batch_id)
        if batch is not None:
            others = session.scalar(
                select(func.count(Hold.id)).where(
                    Hold.batch_id == hold.batch_id,
                    Hold.id != hold.id,
                    Hold.status.in_(hold_rules.UNDECIDED),
                )
            )
            batch.status = hold_rules.batch_status_after(decision, batch.status, others or 0)
        session.flush()
    log.info("hold %s %s by %s", hold_id, status, signer.username)
    return hold


def add_suppression(
    session: Session, zone_id: str, start: datetime, end: datetime, reason: str, grace_min: float
) -> RulesOutcome:
    """Record a suppression window and re-evaluate the zone from its start."""
    if end <= start:
        raise ValueError(f"suppression window ends ({end.isoformat()}) before it starts")
    if not reason.strip() or grace_min <= 0:
        raise ValueError("a suppression window needs a reason and a grace period over 0 minutes")
    result = RulesOutcome()
    session.add(
        SuppressionWindow(
            zone_id=zone_id, started_at=start, ended_at=end, reason=reason, grace_min=grace_min
        )
    )
    session.flush()
    windows = _suppressions(session, {zone_id}, start - timedelta(days=8))[zone_id]
    pending = []
    for profile in zone_profiles(session, {zone_id})[zone_id]:
        state = session.get(ZoneRuleState, (zone_id, profile.name), with_for_update=True)
        if state is None or state.watermark is None or state.watermark < start:
            continue
        outcome = reevaluate_zone(profile, windows, start, _History(session, zone_id, profile))
        _save_state(state, outcome.state, None)
        pending.append((zone_id, profile, outcome))
    with _as_system(session):
        _apply(session, pending, result)
        session.flush()
    return result
