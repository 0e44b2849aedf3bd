"""The refusal budget: rows of their own at a rate per gateway, the rest counted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cloud.domain.refusals import RefusalBudget


def test_a_burst_then_the_rate_and_other_gateways_are_not_touched() -> None:
    budget = RefusalBudget(rate=1.0, burst=3.0)
    assert [budget.take("gw-a", 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert budget.take("gw-b", 0.0)  # a flood from gw-a costs gw-b nothing
    assert not budget.take("gw-a", 0.5)
    assert budget.take("gw-a", 1.6)  # a token a second
    assert not budget.take("gw-a", 1.7)


def test_counted_refusals_are_reported_at_once_then_once_a_period() -> None:
    budget = RefusalBudget(report_every=60.0)
    assert budget.counted("gw-a", 5, 0.0) == 5
    assert budget.counted("gw-a", 7, 10.0) is None
    assert budget.counted("gw-a", 1, 59.0) is None
    assert budget.counted("gw-a", 2, 61.0) == 10  # nothing counted goes unreported


@given(
    st.lists(st.tuples(st.floats(0, 10), st.integers(1, 50)), min_size=1, max_size=50),
    st.floats(0.1, 5),
    st.integers(1, 30),
)
def test_own_rows_never_exceed_burst_plus_rate_times_time(
    steps: list[tuple[float, int]], rate: float, burst: int
) -> None:
    budget = RefusalBudget(rate=rate, burst=float(burst))
    now, taken = 0.0, 0
    for gap, n in steps:
        now += gap
        taken += sum(budget.take("gw", now) for _ in range(n))
    assert taken <= burst + rate * now + 1e-9
    assert taken >= min(burst, sum(n for _, n in steps[:1]))  # the first burst is kept
