"""Monitoring profiles: presets, zone kinds, validation errors that name the field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.domain.monitoring import (
    PRESETS,
    Profile,
    ProfileError,
    presets_for_kind,
    profile_from_dict,
    with_zone_limits,
)


def test_presets_cover_the_four_classes() -> None:
    assert set(PRESETS) == {"2-8C", "15-25C", "frozen", "humidity"}
    fridge = PRESETS["2-8C"]
    assert {(lim.level, lim.kind) for lim in fridge.limits} >= {
        ("warning", "high"),
        ("alarm", "high"),
        ("warning", "low"),
        ("alarm", "low"),
    }
    assert {c.limit for c in fridge.cumulative} == {10.0, -0.5}
    assert fridge.freeze_limit == 0.0
    frozen = PRESETS["frozen"]
    assert {lim.limit for lim in frozen.limits} >= {-15.0, -25.0}
    assert PRESETS["humidity"].quantity == "humidity"
    assert PRESETS["humidity"].excursion_kind == "humidity"


def test_zone_kinds_get_presets() -> None:
    assert [p.name for p in presets_for_kind("cold_room")] == ["2-8C", "humidity"]
    assert [p.name for p in presets_for_kind("ambient")] == ["15-25C", "humidity"]
    assert [p.name for p in presets_for_kind("freezer")] == ["frozen"]
    assert [p.name for p in presets_for_kind("mystery")] == ["2-8C", "humidity"]


def test_deadband_and_limits() -> None:
    high = PRESETS["2-8C"].limits[0]
    assert high.beyond(8.1) and not high.beyond(8.0)
    assert not high.back_inside(7.8) and high.back_inside(7.7)


def test_a_profile_from_plain_data() -> None:
    profile = profile_from_dict(
        {
            "name": "vaccines",
            "limits": [{"level": "alarm", "kind": "high", "limit": 8, "delay_min": 30}],
            "cumulative": [
                {
                    "level": "alarm",
                    "direction": "above",
                    "limit": 10,
                    "allowed_min": 600,
                    "window_min": 10080,
                }
            ],
            "max_gap_min": 10,
            "freeze_limit": 0,
        }
    )
    assert profile.limits[0].rule == "alarm high > 8 for 30 min"
    assert profile.gap_alarm_min == 40 and profile.lookback_min == 10080


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": ""}, "name must be 1-32 characters"),
        ({"name": "p", "limits": [{"level": "critical"}]}, "limits[0]: level must be one of"),
        (
            {"name": "p", "limits": [{"level": "alarm", "kind": "high", "limit": "eight"}]},
            "limits[0]: limit must be a finite number, not 'eight'",
        ),
        (
            {
                "name": "p",
                "limits": [{"level": "alarm", "kind": "low", "limit": 2, "delay_min": -1}],
            },
            "delay_min must be at least 0",
        ),
        ({"name": "p", "max_gap_min": 30, "gap_alarm_min": 10}, "gap_alarm_min 10 is under"),
        ({"name": "p", "quantity": "pressure"}, "quantity must be one of"),
        (
            {
                "name": "p",
                "cumulative": [
                    {
                        "level": "alarm",
                        "direction": "above",
                        "limit": 10,
                        "allowed_min": 100,
                        "window_min": 50,
                    }
                ],
            },
            "cumulative[0]: allowed_min 100 must be under window_min",
        ),
    ],
)
def test_bad_profiles_are_refused_naming_the_field(data: dict, message: str) -> None:
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        profile_from_dict(data, "profiles.yaml")


# --- a zone's own limits (decision 0024) ---------------------------------------------------


def test_own_limits_move_the_presets_edge_and_keep_delays_and_deadband() -> None:
    own = with_zone_limits(PRESETS["2-8C"], 3.0, 7.0)
    assert [lim.rule for lim in own.limits] == [
        "warning high > 7 for 10 min",
        "alarm high > 7 for 60 min",
        "alarm high > 12 for 15 min",
        "warning low < 3 for 10 min",
        "alarm low < 3 for 60 min",
    ]
    assert {lim.deadband for lim in own.limits} == {0.3}
    assert own.name == "2-8C" and "zone limits 3 to 7 C" in own.description
    kept = PRESETS["2-8C"]
    assert (own.cumulative, own.max_gap_min, own.gap_alarm_min, own.freeze_limit) == (
        kept.cumulative,
        kept.max_gap_min,
        kept.gap_alarm_min,
        kept.freeze_limit,
    )


def test_an_outer_level_the_zone_passes_moves_to_its_limit() -> None:
    own = with_zone_limits(PRESETS["2-8C"], None, 13.0)
    highs = [lim.rule for lim in own.limits if lim.kind == "high"]
    assert highs == [
        "warning high > 13 for 10 min",
        "alarm high > 13 for 60 min",
        "alarm high > 13 for 15 min",
    ]
    assert [lim for lim in own.limits if lim.kind == "low"] == [
        lim for lim in PRESETS["2-8C"].limits if lim.kind == "low"
    ]


def test_levels_keep_their_level_and_a_side_without_any_gets_an_alarm() -> None:
    own = with_zone_limits(PRESETS["frozen"], -30.0, None)
    lows = [(lim.rule, lim.deadband) for lim in own.limits if lim.kind == "low"]
    assert lows == [("warning low < -30 for 30 min", 1.0)]  # a freezer's cold side warns
    high_only = Profile(name="x", limits=PRESETS["frozen"].limits[:3])
    lows = [(lim.rule, lim.deadband) for lim in with_zone_limits(high_only, -30.0, None).limits]
    assert lows[-1] == ("alarm low < -30 for 60 min", 1.0)


def test_other_profiles_and_zones_without_limits_are_left_alone() -> None:
    assert with_zone_limits(PRESETS["humidity"], 3.0, 7.0) is PRESETS["humidity"]
    assert with_zone_limits(PRESETS["2-8C"], None, None) is PRESETS["2-8C"]


@given(
    name=st.sampled_from(["2-8C", "15-25C", "frozen"]),
    low=st.one_of(st.none(), st.floats(-60, 40, allow_nan=False)),
    width=st.floats(0.5, 40, allow_nan=False),
    inside=st.floats(0, 1),
)
def test_own_limits_take_the_edges_levels_and_inside_them_nothing_counts(
    name: str, low: float | None, width: float, inside: float
) -> None:
    base = PRESETS[name]
    high = None if low is None else low + width
    own = with_zone_limits(base, low, high)
    if low is None or high is None:
        assert own is base
        return
    assert {lim.limit for lim in own.limits if lim.kind == "high"} >= {high}
    assert all(lim.limit >= high for lim in own.limits if lim.kind == "high")
    assert all(lim.limit <= low for lim in own.limits if lim.kind == "low")
    for side, limit, inner in (("high", high, min), ("low", low, max)):
        edge = inner(x.limit for x in base.limits if x.kind == side)
        moved = {(x.level, x.delay_min) for x in base.limits if x.kind == side and x.limit == edge}
        at_limit = {
            (x.level, x.delay_min) for x in own.limits if x.kind == side and x.limit == limit
        }
        assert moved <= at_limit  # the edge's levels, with their delays, at the zone's limit
    value = low + inside * (high - low)
    assert not any(lim.beyond(value) for lim in own.limits)
    delays = {lim.delay_min for lim in base.limits}
    assert {lim.delay_min for lim in own.limits} <= delays
    assert own.cumulative == base.cumulative and own.freeze_limit == base.freeze_limit
