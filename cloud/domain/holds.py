"""When a batch is frozen (quality hold), and what QA may decide about a hold.

A batch is held when a product rule says so: any freezing of a freeze-sensitive product,
an alarm-level excursion, a monitoring gap longer than allowed, or its stability budget
spent. An excursion a suppression window absorbed is recorded but holds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

# decision -> the meaning of its signature (None: not signed)
DECISIONS = {"release": "release", "reject": "rejection", "investigate": None, "review": "review"}
TWO_PERSON_MEANINGS = {"release": "approval", "reject": "rejection"}  # the second signature
NEW_STATUS = {"release": "released", "reject": "rejected", "investigate": "investigating"}
UNDECIDED = frozenset({"open", "investigating"})
NOT_HELD = frozenset({"rejected"})  # a batch QA already rejected is not held again


class DispositionError(ValueError):
    """A decision that cannot be taken on a hold, saying why."""


@dataclass(frozen=True, kw_only=True)
class ExcursionFacts:
    kind: str
    level: str
    rule: str
    suppressed: bool


@dataclass(frozen=True, kw_only=True)
class ProductFacts:
    freeze_sensitive: bool
    budget_min: float | None


def hold_reasons(
    excursion: ExcursionFacts, product: ProductFacts, remaining_min: float | None
) -> list[str]:
    """Why a batch exposed to this excursion must be held (empty: it need not be)."""
    reasons = []
    if not excursion.suppressed:
        if excursion.kind == "freezing":
            if product.freeze_sensitive:
                reasons.append(f"freezing of a freeze-sensitive product ({excursion.rule})")
        elif excursion.kind == "unknown_conditions":
            if excursion.level == "alarm":
                reasons.append("monitoring gap longer than allowed: conditions unknown")
        elif excursion.level == "alarm":
            reasons.append(f"alarm-level excursion ({excursion.rule})")
    if remaining_min is not None and remaining_min <= 0:
        reasons.append(_budget_spent(product.budget_min, remaining_min))
    return reasons


def _budget_spent(budget_min: float | None, remaining_min: float) -> str:
    """ "stability budget exhausted: 185 of 180 min spent (5 over)": the figures QA weighs."""
    if budget_min is None:  # a remaining budget implies a budget; said plainly if not
        return f"stability budget exhausted ({-remaining_min:.0f} min over)"
    spent = budget_min - remaining_min
    over = f" ({-remaining_min:.0f} over)" if round(-remaining_min) >= 1 else ""
    return f"stability budget exhausted: {spent:.0f} of {budget_min:.0f} min spent{over}"


RISK_CLASSES = ("standard", "high")
# What a hold can be about (from the reasons the rules wrote on it), and which of them need a
# second QA signature unless configured otherwise: freezing, the damage no test undoes.
HOLD_REASON_KINDS = {
    "freezing": "freezing of",
    "alarm": "alarm-level excursion",
    "unknown_conditions": "monitoring gap",
    "budget": "stability budget exhausted",
}
TWO_PERSON_REASONS = frozenset({"freezing"})


def reason_kinds(reason: str) -> frozenset[str]:
    """The kinds of the reasons written on a hold (hold_reasons' texts, joined by "; ")."""
    parts = [part.strip() for part in reason.split(";")]
    return frozenset(
        kind
        for kind, prefix in HOLD_REASON_KINDS.items()
        if any(part.startswith(prefix) for part in parts)
    )


def parse_two_person_reasons(text: str | None) -> frozenset[str]:
    """The configured reason kinds ("freezing,alarm"; empty: none) or the default (None)."""
    if text is None:
        return TWO_PERSON_REASONS
    kinds = frozenset(k.strip() for k in text.split(",") if k.strip())
    unknown = sorted(kinds - set(HOLD_REASON_KINDS))
    if unknown:
        raise ValueError(
            f"two-person hold reasons: {', '.join(unknown)} is not one of "
            f"{', '.join(HOLD_REASON_KINDS)}"
        )
    return kinds


def two_person_because(risk_class: str, reason: str, configured: frozenset[str]) -> list[str]:
    """Why a hold needs two QA signatures (review, then approval); empty: one signature."""
    why = [f"product risk class {risk_class}"] if risk_class == "high" else []
    why += [f"hold reason {kind}" for kind in sorted(reason_kinds(reason) & configured)]
    return why


@dataclass(frozen=True, kw_only=True)
class Signatories:
    """Who signs a hold: two people (review, then approval) or one, and who has reviewed."""

    two_person: bool = False
    reviewed_by: str | None = None  # the username of the review's signer
    signer: str = ""


def decide(
    status: str, decision: str, meaning: str | None, who: Signatories | None = None
) -> tuple[str, str | None]:
    """The hold's new status and the signature meaning the decision needs (None: no signature).

    A two-person hold is reviewed first (meaning review, the hold stays undecided), then
    released (meaning approval) or rejected by somebody else."""
    who = who or Signatories()
    if decision not in DECISIONS:
        raise DispositionError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    if status not in UNDECIDED:
        raise DispositionError(f"the hold is {status} already; a final decision is not reopened")
    needed = DECISIONS[decision]
    if decision == "review":
        if not who.two_person:
            raise DispositionError(
                "this hold needs one signature: release or reject it, there is nothing to review"
            )
        if who.reviewed_by is not None:
            raise DispositionError(
                f"the hold was reviewed by {who.reviewed_by} already; it awaits the approval "
                "of another QA"
            )
    elif needed is not None and who.two_person:
        if who.reviewed_by is None:
            raise DispositionError(
                f"this hold needs two QA signatures: a review first, then the {decision} by "
                "another QA; nobody has reviewed it yet"
            )
        if who.reviewed_by == who.signer:
            raise DispositionError(
                f"{who.signer} reviewed this hold; the {decision} must be signed by a "
                "different QA (two people)"
            )
        needed = TWO_PERSON_MEANINGS[decision]
    if meaning is not None and meaning != needed:
        raise DispositionError(
            f"a {decision} is signed with the meaning {needed!r}, not {meaning!r}"
        )
    return NEW_STATUS.get(decision, status), needed


def batch_status_after(decision: str, current: str, other_undecided: int) -> str:
    """The batch's status once a hold is decided."""
    if decision == "reject":
        return "rejected"
    if decision == "release" and current == "held" and other_undecided == 0:
        return "available"
    return current
