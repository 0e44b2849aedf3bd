"""Exposure of batches to an excursion from custody, and the stability budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.domain.exposure import (
    ExposureLine,
    Presence,
    ZoneSeries,
    batch_exposures,
    remaining_budget,
    spent_minutes,
    summarise,
    union,
)

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def m(x: float) -> datetime:
    return T0 + timedelta(minutes=x)


def test_batches_present_during_the_excursion_with_minutes_values_and_degree_minutes() -> None:
    series = ZoneSeries([(m(i), 5.0 if i < 10 or i >= 40 else 11.0) for i in range(60)], high=True)
    presences = [
        Presence(1, 100, m(0), m(25)),  # batch 100: two items overlapping, 10..25
        Presence(2, 100, m(20), m(30)),  # and 20..30: union 10..30
        Presence(3, 200, m(35), None),  # batch 200 arrives at 35 and stays
        Presence(4, 300, m(45), None),  # batch 300 arrives after the end
    ]
    a, b = batch_exposures(m(10), m(40), presences, series, limit=8.0, high=True)
    assert (a.batch_id, a.items, a.minutes) == (100, 2, 20.0)
    assert (a.started_at, a.ended_at) == (m(10), m(30))
    assert (a.min_value, a.max_value) == (11.0, 11.0)
    assert a.degree_minutes == pytest.approx(20 * 3.0)
    assert (b.batch_id, b.minutes, b.degree_minutes) == (200, 5.0, pytest.approx(15.0))


def test_several_sensors_the_worst_value_counts() -> None:
    points = [(m(0), 9.0), (m(0), 12.0), (m(10), 5.0)]
    high = ZoneSeries(points, high=True)
    (e,) = batch_exposures(m(0), m(10), [Presence(1, 1, m(0), None)], high, 8.0, True)
    assert e.max_value == 12.0 and e.degree_minutes == pytest.approx(40.0)


def test_low_excursion_degree_minutes_below_the_limit() -> None:
    series = ZoneSeries([(m(0), 1.0), (m(5), -1.0), (m(10), 5.0)], high=False)
    (e,) = batch_exposures(m(0), m(10), [Presence(1, 1, m(0), None)], series, 2.0, False)
    assert e.min_value == -1.0 and e.degree_minutes == pytest.approx(5 * 1.0 + 5 * 3.0)


def test_unknown_conditions_have_minutes_but_no_values() -> None:
    (e,) = batch_exposures(m(0), m(90), [Presence(1, 7, m(30), None)], None, None, True)
    assert (e.minutes, e.min_value, e.max_value, e.degree_minutes) == (60.0, None, None, 0.0)


def test_the_budget_is_the_union_of_out_of_range_exposures_across_zones() -> None:
    exposures = [
        ("high", m(0), m(60)),  # warning level in the warehouse
        ("high", m(0), m(60)),  # the alarm level of the same episode
        ("cumulative", m(30), m(60)),
        ("high", m(120), m(150)),  # later, in the truck
        ("unknown_conditions", m(200), m(400)),  # not out of range, unknown
        ("humidity", m(500), m(600)),
    ]
    spent = spent_minutes(exposures)
    assert spent == 90.0
    assert remaining_budget(600, spent) == 510.0
    assert remaining_budget(None, spent) is None


@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 100)), max_size=20))
def test_union_never_exceeds_the_sum_and_covers_every_span(raw: list) -> None:
    spans = [(a, a + d) for a, d in raw]
    merged = union(spans)
    assert sum(b - a for a, b in merged) <= sum(b - a for a, b in spans) + 1e-9
    for a, b in spans:
        if b > a:
            assert any(x <= a and b <= y for x, y in merged)


# --- what an exposure calls for: holds and their disposition (cloud.domain.holds) ---------

from cloud.domain.holds import (  # noqa: E402
    DispositionError,
    ExcursionFacts,
    ProductFacts,
    batch_status_after,
    decide,
    hold_reasons,
)

SENSITIVE = ProductFacts(freeze_sensitive=True, budget_min=600)
ROBUST = ProductFacts(freeze_sensitive=False, budget_min=None)


def facts(kind: str, level: str = "alarm", suppressed: bool = False) -> ExcursionFacts:
    return ExcursionFacts(kind=kind, level=level, rule=f"{level} {kind}", suppressed=suppressed)


def test_hold_reasons_follow_the_product_rules() -> None:
    assert hold_reasons(facts("freezing"), SENSITIVE, 500) == [
        "freezing of a freeze-sensitive product (alarm freezing)"
    ]
    assert hold_reasons(facts("freezing"), ROBUST, None) == []
    assert hold_reasons(facts("high"), ROBUST, None) == ["alarm-level excursion (alarm high)"]
    assert hold_reasons(facts("high", "warning"), SENSITIVE, 10) == []
    assert hold_reasons(facts("high", "warning"), SENSITIVE, -0.0) == [
        "stability budget exhausted: 600 of 600 min spent"
    ]
    assert hold_reasons(facts("high", "warning"), SENSITIVE, -45.2) == [
        "stability budget exhausted: 645 of 600 min spent (45 over)"
    ]
    assert hold_reasons(facts("unknown_conditions", "warning"), SENSITIVE, 100) == []
    assert hold_reasons(facts("unknown_conditions"), SENSITIVE, 100) == [
        "monitoring gap longer than allowed: conditions unknown"
    ]
    assert hold_reasons(facts("high", suppressed=True), ROBUST, None) == []


def test_decisions_need_the_right_signature_and_are_final() -> None:
    assert decide("open", "release", None) == ("released", "release")
    assert decide("investigating", "reject", "rejection") == ("rejected", "rejection")
    assert decide("open", "investigate", None) == ("investigating", None)
    with pytest.raises(DispositionError, match="released already"):
        decide("released", "reject", None)
    with pytest.raises(DispositionError, match="meaning 'release', not 'rejection'"):
        decide("open", "release", "rejection")
    with pytest.raises(DispositionError, match="not one of"):
        decide("open", "destroy", None)


def test_batch_status_after_a_decision() -> None:
    assert batch_status_after("release", "held", 0) == "available"
    assert batch_status_after("release", "held", 1) == "held"  # another hold is undecided
    assert batch_status_after("release", "recalled", 0) == "recalled"
    assert batch_status_after("reject", "held", 1) == "rejected"
    assert batch_status_after("investigate", "held", 0) == "held"


# --- a batch's exposure summary: an episode's levels counted once ---------------------------

T_SUMMARY = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def line(zone: str, level: str, start: float, end: float, dm: float) -> ExposureLine:
    return ExposureLine(
        zone,
        "high",
        level,
        T_SUMMARY + timedelta(minutes=start),
        T_SUMMARY + timedelta(minutes=end),
        dm,
    )


def test_an_episode_seen_at_two_levels_counts_its_time_once() -> None:
    summary = summarise([line("z", "warning", 0, 180, 987.5), line("z", "alarm", 30, 180, 700.0)])
    assert summary.minutes == 180
    assert summary.by_level == {"alarm": 150, "warning": 180}
    assert summary.degree_minutes == 987.5  # not 1,687.5


def test_separate_episodes_and_zones_add_up() -> None:
    summary = summarise(
        [
            line("z", "warning", 0, 60, 10.0),
            line("z", "warning", 120, 150, 5.0),
            line("y", "alarm", 0, 30, 7.0),
        ]
    )
    assert summary.minutes == 90  # 0-60 and 120-150; zone y's 0-30 lies within 0-60
    assert summary.degree_minutes == 22.0


spans = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.sampled_from(["warning", "alarm"]),
        st.integers(0, 600),
        st.integers(1, 240),
        st.floats(0, 1000, allow_nan=False),
    ),
    max_size=12,
)


@given(spans)
def test_summary_bounds(raw: list[tuple[str, str, int, int, float]]) -> None:
    lines = [line(z, lv, s, s + d, dm) for z, lv, s, d, dm in raw]
    summary = summarise(lines)
    total = sum(d for *_, d, _ in raw)
    assert summary.minutes <= total + 1e-6
    assert summary.minutes >= max((d for *_, d, _ in raw), default=0) - 1e-6
    assert all(m <= summary.minutes + 1e-6 for m in summary.by_level.values())
    assert summary.degree_minutes <= sum(dm for *_, dm in raw) + 1e-6
    assert summary.degree_minutes >= max((dm for *_, dm in raw), default=0.0) - 1e-6
    disjoint = sorted((s, s + d) for _, _, s, d, _ in raw)
    if all(b1 < a2 for (_, b1), (a2, _) in zip(disjoint, disjoint[1:], strict=False)):
        assert summary.minutes == pytest.approx(total)
