"""Mean kinetic temperature: the published worked examples and the invariants of the formula."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.domain.mkt import COLD_WINDOW, ROOM_WINDOW, MKTError, durations, mkt, window_for

EXAMPLES = (
    Path(__file__).resolve().parents[1] / "fixtures" / "conformance" / "mkt_worked_examples.json"
)
R_KJ = 0.0083144


def examples() -> list[dict]:
    if not EXAMPLES.exists():
        pytest.fail(f"the MKT worked examples are missing: {EXAMPLES}")
    return json.loads(EXAMPLES.read_text())["worked_examples"]


def test_the_three_step_worked_example() -> None:
    (example,) = [e for e in examples() if e["id"] == "isopharm-3-step"]
    points = [(p["temp_c"], p["hours"]) for p in example["inputs"]]
    result = mkt(points)
    assert round(result, 1) == example["expected_mkt_c"]
    assert result == pytest.approx(example["recomputed_here"], abs=0.01)


def test_the_52_week_constant_example_with_its_own_constants() -> None:
    (example,) = [e for e in examples() if e["id"].startswith("usp1160")]
    delta_h_over_r = example["delta_h_kj_mol"] / R_KJ
    points = [(25.0, 1.0)] * 52
    assert round(mkt(points, delta_h_over_r, kelvin=273.1), 1) == example["expected_mkt_c"]


temps = st.floats(-30, 45, allow_nan=False)
weights = st.floats(0.01, 100, allow_nan=False)


@settings(max_examples=200)
@given(st.lists(st.tuples(temps, weights), min_size=1, max_size=30))
def test_mkt_is_at_least_the_mean_and_within_the_range(points: list[tuple[float, float]]) -> None:
    result = mkt(points)
    mean = sum(t * w for t, w in points) / sum(w for _, w in points)
    assert result >= mean - 1e-6
    assert min(t for t, _ in points) - 1e-6 <= result <= max(t for t, _ in points) + 1e-6


@given(temps, weights)
def test_a_constant_series_is_its_own_mkt(t: float, w: float) -> None:
    assert mkt([(t, w)] * 3) == pytest.approx(t, abs=1e-9)


@given(st.lists(st.tuples(temps, weights), min_size=1, max_size=10))
def test_doubling_durations_or_splitting_intervals_changes_nothing(points: list) -> None:
    result = mkt(points)
    assert mkt([(t, 2 * w) for t, w in points]) == pytest.approx(result, abs=1e-9)
    split = [piece for t, w in points for piece in ((t, w / 2), (t, w / 2))]
    assert mkt(split) == pytest.approx(result, abs=1e-9)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(MKTError, match="point 1: temperature"):
        mkt([(5, 1), (-300, 1)])
    with pytest.raises(MKTError, match="point 0: duration"):
        mkt([(5, -1)])
    with pytest.raises(MKTError, match="no duration"):
        mkt([])


def test_durations_hold_each_value_until_the_next() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    samples = [(t0, 5.0), (t0 + timedelta(minutes=10), 9.0), (t0 + timedelta(minutes=40), 4.0)]
    start, end = t0 + timedelta(minutes=5), t0 + timedelta(minutes=60)
    assert durations(samples, start, end) == [(5.0, 300.0), (9.0, 1800.0), (4.0, 1200.0)]


def test_windows_by_product_class() -> None:
    assert window_for(8.0) == COLD_WINDOW == timedelta(hours=24)
    assert window_for(25.0) == ROOM_WINDOW == timedelta(days=30)
    assert window_for(None) == ROOM_WINDOW
