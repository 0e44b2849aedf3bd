"""Monitoring profiles: presets, zone kinds, validation errors that name the field."""

from __future__ import annotations

import pytest

from cloud.domain.monitoring import PRESETS, ProfileError, presets_for_kind, profile_from_dict


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
