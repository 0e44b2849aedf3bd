"""Frozen batches as QA sees them (exposure, remaining stability budget, MKT), the signed
disposition taken from the control room, and the excursions and holds the API lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

import cloud.service_layer.rules as rules_service
from cloud.adapters.orm.quality import Excursion, Exposure, Hold
from cloud.adapters.orm.readings import Site, Zone
from cloud.adapters.orm.traceability import Batch, Product
from cloud.domain.exposure import ExposureLine, summarise
from cloud.domain.holds import TWO_PERSON_MEANINGS, TWO_PERSON_REASONS
from cloud.service_layer.signatures import existing_user, signatures_on
from cloud.views.pages import where_given

DECISIONS = {"release": "release", "reject": "rejection", "review": "review"}  # -> meaning
MEANING_TEXT = {
    "review": "I reviewed this hold's evidence (exposure, stability budget, MKT). The batch "
    "stays held until another QA signs its approval or rejection.",
    "approval": "I approve the release of this batch for use and distribution, second to the "
    "review: its exposure was assessed and it remains within its stability data.",
    "release": "I release this batch for use and distribution: its exposure was assessed and "
    "it remains within its stability data.",
    "rejection": "I reject this batch: it may not be used or distributed and is to be destroyed.",
}


@dataclass(frozen=True)
class SignatureLine:
    """A signature shown with its hold: printed name, time, meaning."""

    full_name: str
    username: str
    meaning: str
    signed_at: datetime


@dataclass(frozen=True)
class HoldRow:
    hold_id: int
    batch_id: int
    lot: str
    gtin: str
    product: str
    expires_on: str
    status: str
    reason: str
    opened_at: datetime
    timezone: str
    excursion: str  # the most severe: "ALARM high in Cold room 1, peak 11.2 C"
    evidence: str | None  # "1 of 2 sensors calibration overdue since ..." (decision 0027)
    exposures: int
    exposure_minutes: float  # the union of the exposures' spans: an episode's levels once
    level_minutes: dict[str, float]  # each level's own union, shown separately
    min_value: float | None
    max_value: float | None
    degree_minutes: float
    budget_min: float | None  # the product's allowed time out of range
    remaining_min: float | None
    mkt: float | None
    two_person: tuple[str, ...] = ()  # why two QA must sign (empty: one signature)
    reviewed_by: str | None = None  # username of the review's signer
    reviewed_by_name: str | None = None
    reviewed_at: datetime | None = None
    signatures: tuple[SignatureLine, ...] = ()

    def meaning_of(self, decision: str) -> str:
        """The meaning a decision is signed with on this hold."""
        if self.two_person and decision in TWO_PERSON_MEANINGS:
            return TWO_PERSON_MEANINGS[decision]
        return DECISIONS[decision]


LEVEL_RANK = {"alarm": 2, "warning": 1}
KIND_RANK = {"freezing": 4, "high": 3, "low": 3, "cumulative": 2, "humidity": 1}


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def _severity(excursion: Excursion) -> tuple[int, int, int, datetime]:
    """Unsuppressed first, then alarm before warning, then the kind, then the latest."""
    return (
        excursion.suppressed_reason is None,
        LEVEL_RANK.get(excursion.level, 0),
        KIND_RANK.get(excursion.kind, 0),
        excursion.started_at,
    )


def _headline(session: Session, excursion: Excursion | None) -> tuple[str, str]:
    """ "ALARM high in Leeds / Cold room 1, peak 11.2 C" and the site's time zone."""
    if excursion is None:
        return "--", "UTC"
    zone = session.get(Zone, excursion.zone_id)
    site = session.get(Site, zone.site_id) if zone else None
    peak = "" if excursion.peak is None else f", peak {excursion.peak:.1f} \u00b0C"
    where = f"{site.name} / {zone.name}" if zone and site else excursion.zone_id
    text = f"{excursion.level.upper()} {excursion.kind} in {where}{peak}"
    return text, site.timezone if site else "UTC"


def _evidence(hold: Hold, exposures: list[Exposure]) -> str | None:
    """What the hold and its batch's exposures say of evidence from overdue sensors."""
    notes = [hold.evidence_note, *(e.evidence_note for e in exposures)]
    return "; ".join(dict.fromkeys(n for n in notes if n)) or None


def frozen_batches(
    session: Session, two_person_reasons: frozenset[str] = TWO_PERSON_REASONS
) -> list[HoldRow]:
    """Holds not yet decided, oldest first, with the batch's exposure summary and, for a
    two-person hold, who reviewed it."""
    holds = [h for h in rules_service.open_holds(session) if h.status in ("open", "investigating")]
    holds.sort(key=lambda h: (h.opened_at, h.id))
    rows = []
    for hold in holds:
        batch = session.get(Batch, hold.batch_id)
        assert batch is not None
        product = session.get(Product, batch.gtin)
        found = session.execute(
            select(Exposure, Excursion)
            .join(Excursion, Excursion.id == Exposure.excursion_id)
            .where(Exposure.batch_id == batch.id)
        ).all()
        exposures = [exposure for exposure, _ in found]
        # The headline is the most severe excursion the batch saw, not the first that held it.
        candidates = [excursion for _, excursion in found]
        if hold.excursion_id is not None and not candidates:
            first = session.get(Excursion, hold.excursion_id)
            candidates = [] if first is None else [first]
        worst = max(candidates, key=_severity, default=None)
        excursion_text, timezone = _headline(session, worst)
        summary = summarise(
            [
                ExposureLine(
                    excursion.zone_id,
                    excursion.kind,
                    excursion.level,
                    exposure.started_at,
                    exposure.ended_at,
                    exposure.degree_minutes,
                )
                for exposure, excursion in found
            ]
        )
        reviewer = rules_service.reviewer_of(session, hold)
        lows = [e.min_value for e in exposures if e.min_value is not None]
        highs = [e.max_value for e in exposures if e.max_value is not None]
        rows.append(
            HoldRow(
                hold_id=hold.id,
                batch_id=batch.id,
                lot=batch.lot,
                gtin=batch.gtin,
                product=product.name if product else batch.gtin,
                expires_on=batch.expires_on.isoformat(),
                status=hold.status,
                reason=hold.reason,
                opened_at=hold.opened_at,
                timezone=timezone,
                excursion=excursion_text,
                evidence=_evidence(hold, exposures),
                exposures=len(exposures),
                exposure_minutes=summary.minutes,
                level_minutes=summary.by_level,
                min_value=min(lows) if lows else None,
                max_value=max(highs) if highs else None,
                degree_minutes=summary.degree_minutes,
                budget_min=None
                if product is None or product.stability_budget_min is None
                else float(product.stability_budget_min),
                remaining_min=_number(rules_service.remaining_budget(session, batch.id)),
                mkt=_number(rules_service.mkt_for_batch(session, batch.id)),
                two_person=tuple(
                    rules_service.two_person_because(session, hold, two_person_reasons)
                ),
                reviewed_by=reviewer.username if reviewer else None,
                reviewed_by_name=reviewer.full_name if reviewer else None,
                reviewed_at=hold.reviewed_at,
                signatures=tuple(
                    SignatureLine(s.full_name, s.username, s.meaning, s.signed_at)
                    for s in signatures_on(session, hold)
                ),
            )
        )
    return rows


def disposition(
    session: Session,
    hold_id: int,
    decision: str,
    username: str,
    password: str,
    reason: str,
    meaning: str | None = None,
    two_person_reasons: frozenset[str] = TWO_PERSON_REASONS,
    user_id: str | None = None,
) -> Hold:
    """Review, release or reject a held batch with the user's electronic signature, signed
    with the meaning the user was shown (default: a one-signature hold's); `user_id` is the
    signature's first component, needed for the first signing of a session."""
    if decision not in DECISIONS:
        raise ValueError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    user = existing_user(session, username)
    return rules_service.disposition_hold(
        session,
        hold_id,
        decision,
        user,
        password,
        meaning or DECISIONS[decision],
        reason,
        two_person_reasons,
        username=user_id,
    )


# --- the API's lists ----------------------------------------------------------------------


def excursions(
    zone_id: str | None = None,
    kind: str | None = None,
    state: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Select[Excursion]:
    """Excursions, newest first; with a window, those that overlap [start, end]."""
    query = select(Excursion).order_by(Excursion.started_at.desc(), Excursion.id.desc())
    query = where_given(query, Excursion, zone_id=zone_id, kind=kind, state=state)
    if end is not None:
        query = query.where(Excursion.started_at <= end)
    if start is not None:
        query = query.where((Excursion.ended_at.is_(None)) | (Excursion.ended_at >= start))
    return query


def exposures_of(session: Session, excursion_id: int) -> list[Exposure]:
    """The exposures of the batches present during an excursion, by batch."""
    query = (
        select(Exposure).where(Exposure.excursion_id == excursion_id).order_by(Exposure.batch_id)
    )
    return list(session.scalars(query))


def holds(status: str | None = None, batch_id: int | None = None) -> Select[Hold]:
    """Holds, oldest first."""
    query = select(Hold).order_by(Hold.opened_at, Hold.id)
    return where_given(query, Hold, status=status, batch_id=batch_id)
