"""FEFO pick suggestions."""

from __future__ import annotations

from datetime import date

import pytest

from cloud.domain.fefo import Candidate, Pick, suggest

TODAY = date(2026, 3, 2)


def batch(ident: int, expires: date, qty: int = 10, status: str = "available", budget=None):
    return Candidate(
        batch_id=ident,
        lot=f"L{ident}",
        expires_on=expires,
        status=status,
        quantity=qty,
        remaining_budget_min=budget,
    )


def test_first_expired_first_out_across_batches() -> None:
    got = suggest(
        [batch(1, date(2026, 9, 1)), batch(2, date(2026, 5, 1), qty=4), batch(3, date(2026, 7, 1))],
        12,
        TODAY,
    )
    assert got.picks == (
        Pick(2, "L2", 4, date(2026, 5, 1)),
        Pick(3, "L3", 8, date(2026, 7, 1)),
    )
    assert got.short_by == 0 and got.skipped == ()


def test_skips_held_expired_and_short_dated_with_reasons() -> None:
    got = suggest(
        [
            batch(1, date(2026, 3, 1)),  # expired yesterday
            batch(2, date(2026, 4, 1), status="held"),
            batch(3, date(2026, 4, 15)),  # 30 days left at delivery on 03-16 < 60
            batch(4, date(2026, 12, 1), qty=5),
            batch(5, date(2026, 12, 1), status="recalled"),
        ],
        8,
        TODAY,
        min_shelf_life_days=60,
        delivery=date(2026, 3, 16),
    )
    assert got.picks == (Pick(4, "L4", 5, date(2026, 12, 1)),)
    assert got.short_by == 3
    reasons = {s.lot: s.reason for s in got.skipped}
    assert reasons["L1"] == "expired"
    assert reasons["L2"] == "held"
    assert reasons["L5"] == "recalled"
    assert reasons["L3"] == "30 days of shelf life left at delivery, the line needs 60"


def test_among_equal_expiry_the_least_budget_goes_first() -> None:
    same = date(2026, 8, 1)
    got = suggest(
        [batch(1, same, budget=None), batch(2, same, budget=120.0), batch(3, same, budget=15.0)],
        25,
        TODAY,
    )
    assert [p.lot for p in got.picks] == ["L3", "L2", "L1"]
    assert [p.quantity for p in got.picks] == [10, 10, 5]


def test_bad_quantity() -> None:
    with pytest.raises(ValueError, match="positive quantity, got 0"):
        suggest([], 0, TODAY)
