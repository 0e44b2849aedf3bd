"""FEFO (first expired, first out) pick suggestions for an order line.

Batches that are not available, have expired, or would arrive with less shelf life than the
line asks for are skipped, each with its reason. The rest are taken earliest expiry first;
among batches that expire on the same day, the one with the least stability budget left
goes first (it has the least margin for another excursion), then by lot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from cloud.domain.expiry import days_left, is_expired


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    batch_id: int
    lot: str
    expires_on: date
    status: str
    quantity: int  # units available to pick
    remaining_budget_min: float | None = None  # None: no budget defined (unlimited)


@dataclass(frozen=True, slots=True)
class Pick:
    batch_id: int
    lot: str
    quantity: int
    expires_on: date


@dataclass(frozen=True, slots=True)
class Skipped:
    batch_id: int
    lot: str
    reason: str


@dataclass(frozen=True, slots=True)
class Suggestion:
    picks: tuple[Pick, ...]
    skipped: tuple[Skipped, ...]
    short_by: int  # units the eligible batches cannot cover


def _skip_reason(c: Candidate, today: date, delivery: date, min_days: int) -> str | None:
    if c.status != "available":
        return c.status
    if is_expired(c.expires_on, today):
        return "expired"
    left = days_left(c.expires_on, delivery)
    if left < min_days:
        return f"{left} days of shelf life left at delivery, the line needs {min_days}"
    if c.quantity <= 0:
        return "no stock"
    return None


def _order(c: Candidate) -> tuple[date, float, str, int]:
    budget = float("inf") if c.remaining_budget_min is None else c.remaining_budget_min
    return (c.expires_on, budget, c.lot, c.batch_id)


def suggest(
    candidates: Iterable[Candidate],
    quantity: int,
    today: date,
    *,
    min_shelf_life_days: int = 0,
    delivery: date | None = None,
) -> Suggestion:
    """Which batches to pick `quantity` units from, and why the others were passed over."""
    if quantity <= 0:
        raise ValueError(f"an order line needs a positive quantity, got {quantity}")
    delivery = max(delivery or today, today)
    eligible, skipped = [], []
    for c in candidates:
        reason = _skip_reason(c, today, delivery, min_shelf_life_days)
        if reason is None:
            eligible.append(c)
        else:
            skipped.append(Skipped(c.batch_id, c.lot, reason))
    picks, wanted = [], quantity
    for c in sorted(eligible, key=_order):
        if wanted == 0:
            break
        take = min(wanted, c.quantity)
        picks.append(Pick(c.batch_id, c.lot, take, c.expires_on))
        wanted -= take
    return Suggestion(tuple(picks), tuple(sorted(skipped, key=lambda s: s.lot)), wanted)
