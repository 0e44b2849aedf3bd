"""The gateway's local alarm: delay, deadband, silence, outputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.alarm import AlarmRule, LocalAlarm

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def cold_room(**kw) -> LocalAlarm:
    rule = dict(zone="cold", low=2.0, high=8.0, delay_s=600, deadband=0.5, output="siren")
    return LocalAlarm([AlarmRule(**{**rule, **kw})])


def test_out_of_range_shorter_than_the_delay_does_not_alarm() -> None:
    alarm = cold_room()
    assert alarm.observe({"cold": [8.6]}, at(0)) == []
    assert alarm.observe({"cold": [9.0]}, at(9)) == []
    assert alarm.observe({"cold": [7.0]}, at(9.5)) == []  # back in: the delay restarts
    assert alarm.observe({"cold": [8.4]}, at(12)) == []
    assert alarm.observe({"cold": [8.4]}, at(21.9)) == []
    assert alarm.outputs() == {"siren": False}


def test_alarm_after_the_delay_with_start_time_and_worst_probe() -> None:
    alarm = cold_room()
    alarm.observe({"cold": [5.0, 8.3]}, at(0))
    (change,) = alarm.observe({"cold": [5.0, 8.9]}, at(10))
    assert change.on and change.zone == "cold" and change.since == at(0)
    assert change.value == 8.9 and change.limit == 8.0
    assert alarm.outputs() == {"siren": True}
    assert alarm.observe({"cold": [9.5]}, at(11)) == []  # one change, not one per cycle


def test_freezing_side_and_deadband_on_clearing() -> None:
    alarm = cold_room(delay_s=0)
    (on,) = alarm.observe({"cold": [1.2, 4.0]}, at(0))
    assert on.on and on.value == 1.2 and on.limit == 2.0
    assert alarm.observe({"cold": [2.3]}, at(1)) == []  # inside the limits, not past the deadband
    (off,) = alarm.observe({"cold": [2.6]}, at(2))
    assert not off.on and off.since == at(0)
    assert alarm.outputs() == {"siren": False}


def test_no_good_reading_keeps_the_state() -> None:
    alarm = cold_room(delay_s=0)
    alarm.observe({"cold": [12.0]}, at(0))
    assert alarm.observe({"cold": []}, at(5)) == []
    assert alarm.observe({}, at(6)) == []
    assert alarm.zones["cold"].on


def test_silence_mutes_the_output_until_the_next_alarm() -> None:
    alarm = cold_room(delay_s=0)
    alarm.observe({"cold": [12.0]}, at(0))
    alarm.silence()
    assert alarm.outputs() == {"siren": False}
    alarm.observe({"cold": [5.0]}, at(1))  # clears
    alarm.observe({"cold": [12.0]}, at(2))  # a new alarm sounds again
    assert alarm.outputs() == {"siren": True}


def test_outputs_are_shared_between_zones() -> None:
    alarm = LocalAlarm(
        [
            AlarmRule("a", 2, 8, 0, output="beacon"),
            AlarmRule("b", 15, 25, 0, output="beacon"),
            AlarmRule("c", None, -15, 0, output=None),
        ]
    )
    alarm.observe({"a": [5.0], "b": [26.0], "c": [-10.0]}, at(0))
    assert alarm.outputs() == {"beacon": True}
    assert alarm.zones["c"].on


def test_state_survives_a_restart() -> None:
    alarm = cold_room()
    alarm.observe({"cold": [9.0]}, at(0))
    alarm.observe({"cold": [9.0]}, at(11))
    alarm.silence()
    assert alarm.dirty
    saved = alarm.snapshot()
    assert not alarm.dirty
    restarted = cold_room()
    restarted.restore(saved)
    assert restarted.zones["cold"].on and restarted.zones["cold"].out_since == at(0)
    assert restarted.outputs() == {"siren": False}  # still silenced
    assert restarted.observe({"cold": [9.5]}, at(12)) == []  # no second alarm for the same one
