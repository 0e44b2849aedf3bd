"""The gateway's local alarm: zone limits with an alarm delay, evaluated on the gateway itself.

It works with or without the cloud: a zone out of range for longer than its delay drives a
relay (siren, beacon) and becomes an event in the buffer like any other record. Pure logic
here; the Modbus coil sits behind `AlarmOutput` in `edge.alarm_output`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AlarmRule:
    """Limits of one zone and how long it may be outside them before the alarm sounds."""

    zone: str
    low: float | None
    high: float | None
    delay_s: float
    deadband: float = 0.5
    output: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """The alarm of a zone went on or off."""

    zone: str
    on: bool
    at: datetime
    value: float
    limit: float | None
    since: datetime


@dataclass
class ZoneAlarm:
    """State of one zone's alarm: normal, pending (out of range, delay running), or on."""

    rule: AlarmRule
    out_since: datetime | None = None
    on: bool = False
    last_value: float | None = field(default=None)

    def observe(self, coldest: float, warmest: float, at: datetime) -> AlarmChange | None:
        """Feed the zone's extremes of one poll cycle; returns a change when there is one."""
        rule = self.rule
        breach, limit = self._breach(coldest, warmest)
        self.last_value = breach if breach is not None else warmest
        if breach is not None:
            if self.out_since is None:
                self.out_since = at
            if not self.on and (at - self.out_since).total_seconds() >= rule.delay_s:
                self.on = True
                return AlarmChange(rule.zone, True, at, breach, limit, self.out_since)
            return None
        if self.on:
            if not self._clear_of_deadband(coldest, warmest):
                return None  # back in range but still inside the deadband: hold the alarm
            since = self.out_since or at
            self.on, self.out_since = False, None
            return AlarmChange(rule.zone, False, at, warmest, None, since)
        self.out_since = None
        return None

    def _breach(self, coldest: float, warmest: float) -> tuple[float | None, float | None]:
        if self.rule.high is not None and warmest > self.rule.high:
            return warmest, self.rule.high
        if self.rule.low is not None and coldest < self.rule.low:
            return coldest, self.rule.low
        return None, None

    def _clear_of_deadband(self, coldest: float, warmest: float) -> bool:
        rule = self.rule
        if rule.high is not None and warmest > rule.high - rule.deadband:
            return False
        return not (rule.low is not None and coldest < rule.low + rule.deadband)


class LocalAlarm:
    """Every zone's alarm of one gateway, and which outputs should be energised."""

    def __init__(self, rules: list[AlarmRule]):
        self.zones = {rule.zone: ZoneAlarm(rule) for rule in rules}
        self.silenced: set[str] = set()
        self.dirty = False  # changed since the last snapshot()

    def snapshot(self) -> dict[str, dict[str, object]]:
        """State worth keeping across a restart: a restart must not silence a sounding alarm."""
        self.dirty = False
        return {
            zone: {
                "on": alarm.on,
                "out_since": alarm.out_since.isoformat() if alarm.out_since else None,
                "silenced": zone in self.silenced,
            }
            for zone, alarm in self.zones.items()
        }

    def restore(self, snapshot: dict[str, dict[str, object]]) -> None:
        for zone, saved in snapshot.items():
            alarm = self.zones.get(zone)
            if alarm is None:
                continue  # a zone removed from the config
            alarm.on = bool(saved.get("on"))
            since = saved.get("out_since")
            alarm.out_since = datetime.fromisoformat(since) if isinstance(since, str) else None
            if saved.get("silenced"):
                self.silenced.add(zone)

    def observe(self, temperatures: dict[str, list[float]], at: datetime) -> list[AlarmChange]:
        """Feed one cycle's good temperatures per zone; zones with none keep their state."""
        changes = []
        for zone, values in temperatures.items():
            alarm = self.zones.get(zone)
            if alarm is None or not values:
                continue
            pending = alarm.out_since
            change = alarm.observe(min(values), max(values), at)
            if alarm.out_since != pending:
                self.dirty = True
            if change is not None:
                self.dirty = True
                changes.append(change)
                if not change.on:
                    self.silenced.discard(zone)
        return changes

    def silence(self) -> None:
        """Mute the outputs of the alarms sounding now; a new alarm sounds again."""
        self.silenced |= {zone for zone, alarm in self.zones.items() if alarm.on}
        self.dirty = True

    def outputs(self) -> dict[str, bool]:
        """Desired state of every configured output: on while any of its zones is alarming."""
        desired: dict[str, bool] = {}
        for zone, alarm in self.zones.items():
            output = alarm.rule.output
            if output is not None:
                sounding = alarm.on and zone not in self.silenced
                desired[output] = desired.get(output, False) or sounding
        return desired
