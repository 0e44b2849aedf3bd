"""When a batch is frozen (quality hold), and what QA may decide about a hold.

A batch is held when a product rule says so: any freezing of a freeze-sensitive product,
an alarm-level excursion, a monitoring gap longer than allowed, or its stability budget
spent. An excursion a suppression window absorbed is recorded but holds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

DECISIONS = {"release": "release", "reject": "rejection", "investigate": None}  # -> meaning
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


def decide(status: str, decision: str, meaning: str | None) -> tuple[str, str | None]:
    """The hold's new status and the signature meaning the decision needs (None: no signature)."""
    if decision not in DECISIONS:
        raise DispositionError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    if status not in UNDECIDED:
        raise DispositionError(f"the hold is {status} already; a final decision is not reopened")
    needed = DECISIONS[decision]
    if meaning is not None and meaning != needed:
        raise DispositionError(
            f"a {decision} is signed with the meaning {needed!r}, not {meaning!r}"
        )
    new_status = {"release": "released", "reject": "rejected", "investigate": "investigating"}
    return new_status[decision], needed


def batch_status_after(decision: str, current: str, other_undecided: int) -> str:
    """The batch's status once a hold is decided."""
    if decision == "reject":
        return "rejected"
    if decision == "release" and current == "held" and other_undecided == 0:
        return "available"
    return current
