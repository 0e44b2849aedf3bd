"""Monitoring profiles: the limits that say when a zone is out of its conditions.

A profile has levels (warning and alarm, upper and lower limits), each with an alarm delay
(minutes continuously out of range before it counts) and a deadband (how far back inside
the limit a reading must be to end it); cumulative rules (minutes beyond a limit summed over
a window, as the WHO-class indicators do); the longest gap between valid readings allowed;
and the freeze limit for freeze-sensitive products. Profiles are validated once, here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

LEVELS = ("warning", "alarm")
QUANTITIES = ("temperature", "humidity")


class ProfileError(ValueError):
    """A monitoring profile that cannot be used, naming the field and the bad value."""


@dataclass(frozen=True, kw_only=True)
class Limit:
    """One level: beyond `limit` (above for high, below for low) for `delay_min` counts."""

    level: str
    kind: str  # high | low
    limit: float
    delay_min: float
    deadband: float = 0.0

    @property
    def rule(self) -> str:
        sign = ">" if self.kind == "high" else "<"
        return f"{self.level} {self.kind} {sign} {self.limit:g} for {self.delay_min:g} min"

    def beyond(self, value: float) -> bool:
        return value > self.limit if self.kind == "high" else value < self.limit

    def back_inside(self, value: float) -> bool:
        if self.kind == "high":
            return value <= self.limit - self.deadband
        return value >= self.limit + self.deadband


@dataclass(frozen=True, kw_only=True)
class Cumulative:
    """Minutes at or beyond `limit` summed over the last `window_min`; over `allowed_min` counts."""

    level: str
    direction: str  # above (>= limit) | below (<= limit)
    limit: float
    allowed_min: float
    window_min: float

    @property
    def rule(self) -> str:
        sign = ">=" if self.direction == "above" else "<="
        return (
            f"{self.level} cumulative {sign} {self.limit:g} "
            f"for {self.allowed_min:g} of {self.window_min:g} min"
        )

    def beyond(self, value: float) -> bool:
        return value >= self.limit if self.direction == "above" else value <= self.limit


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A zone's monitoring profile for one quantity."""

    name: str
    quantity: str = "temperature"
    description: str = ""
    limits: tuple[Limit, ...] = ()
    cumulative: tuple[Cumulative, ...] = ()
    max_gap_min: float = 15.0
    gap_alarm_min: float = 60.0
    freeze_limit: float | None = None

    @property
    def excursion_kind(self) -> str | None:
        """The kind a limit breach is reported as: humidity, or None (high/low by limit)."""
        return "humidity" if self.quantity == "humidity" else None

    @property
    def lookback_min(self) -> float:
        """How far back re-evaluation must start to rebuild every rule's state."""
        windows = [c.window_min for c in self.cumulative]
        return max([self.gap_alarm_min, *windows, *(lim.delay_min for lim in self.limits)])


def _number(where: str, name: str, value: Any, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileError(f"{where}: {name} must be a finite number, not {value!r}")
    if minimum is not None and value < minimum:
        raise ProfileError(f"{where}: {name} must be at least {minimum:g}, not {value!r}")
    return float(value)


def _choice(where: str, name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ProfileError(f"{where}: {name} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def profile_from_dict(data: dict[str, Any], where: str = "profile") -> Profile:
    """Validate a profile given as plain data (YAML, JSON, API body); errors name the field."""
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: expected a mapping, not {type(data).__name__}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 32:
        raise ProfileError(f"{where}: name must be 1-32 characters, not {name!r}")
    where = f"{where} {name!r}"
    limits = []
    for i, raw in enumerate(data.get("limits", ())):
        at = f"{where} limits[{i}]"
        if not isinstance(raw, dict):
            raise ProfileError(f"{at}: expected a mapping")
        limits.append(
            Limit(
                level=_choice(at, "level", raw.get("level"), LEVELS),
                kind=_choice(at, "kind", raw.get("kind"), ("high", "low")),
                limit=_number(at, "limit", raw.get("limit")),
                delay_min=_number(at, "delay_min", raw.get("delay_min", 0), minimum=0),
                deadband=_number(at, "deadband", raw.get("deadband", 0), minimum=0),
            )
        )
    cumulative = []
    for i, raw in enumerate(data.get("cumulative", ())):
        at = f"{where} cumulative[{i}]"
        if not isinstance(raw, dict):
            raise ProfileError(f"{at}: expected a mapping")
        rule = Cumulative(
            level=_choice(at, "level", raw.get("level"), LEVELS),
            direction=_choice(at, "direction", raw.get("direction"), ("above", "below")),
            limit=_number(at, "limit", raw.get("limit")),
            allowed_min=_number(at, "allowed_min", raw.get("allowed_min"), minimum=0),
            window_min=_number(at, "window_min", raw.get("window_min"), minimum=1),
        )
        if rule.allowed_min >= rule.window_min:
            raise ProfileError(f"{at}: allowed_min {rule.allowed_min:g} must be under window_min")
        cumulative.append(rule)
    max_gap = _number(where, "max_gap_min", data.get("max_gap_min", 15), minimum=1)
    gap_alarm = _number(where, "gap_alarm_min", data.get("gap_alarm_min", 4 * max_gap), minimum=1)
    if gap_alarm < max_gap:
        raise ProfileError(f"{where}: gap_alarm_min {gap_alarm:g} is under max_gap_min {max_gap:g}")
    freeze = data.get("freeze_limit")
    rules = [lim.rule for lim in limits] + [c.rule for c in cumulative]
    if len(set(rules)) != len(rules):
        raise ProfileError(f"{where}: two limits are the same rule")
    return Profile(
        name=name,
        quantity=_choice(where, "quantity", data.get("quantity", "temperature"), QUANTITIES),
        description=str(data.get("description", "")),
        limits=tuple(limits),
        cumulative=tuple(cumulative),
        max_gap_min=max_gap,
        gap_alarm_min=gap_alarm,
        freeze_limit=None if freeze is None else _number(where, "freeze_limit", freeze),
    )


def _limits(*rows: tuple[str, str, float, float, float]) -> tuple[Limit, ...]:
    return tuple(Limit(level=a, kind=b, limit=c, delay_min=d, deadband=e) for a, b, c, d, e in rows)


PRESETS: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="2-8C",
            description="refrigerated, 2 to 8 C",
            limits=_limits(
                ("warning", "high", 8.0, 10, 0.3),
                ("alarm", "high", 8.0, 60, 0.3),
                ("alarm", "high", 12.0, 15, 0.3),
                ("warning", "low", 2.0, 10, 0.3),
                ("alarm", "low", 2.0, 60, 0.3),
            ),
            # WHO-class indicators: 10 h accumulated at or above 10 C; 1 h at or below -0.5 C.
            cumulative=(
                Cumulative(
                    level="alarm", direction="above", limit=10.0, allowed_min=600, window_min=10080
                ),
                Cumulative(
                    level="alarm", direction="below", limit=-0.5, allowed_min=60, window_min=10080
                ),
            ),
            max_gap_min=15,
            gap_alarm_min=60,
            freeze_limit=0.0,
        ),
        Profile(
            name="15-25C",
            description="controlled room temperature, 15 to 25 C",
            limits=_limits(
                ("warning", "high", 25.0, 30, 0.5),
                ("alarm", "high", 25.0, 240, 0.5),
                ("alarm", "high", 30.0, 15, 0.5),
                ("warning", "low", 15.0, 30, 0.5),
                ("alarm", "low", 15.0, 240, 0.5),
            ),
            max_gap_min=30,
            gap_alarm_min=120,
            freeze_limit=0.0,
        ),
        Profile(
            name="frozen",
            description="frozen, -25 to -15 C",
            limits=_limits(
                ("warning", "high", -15.0, 15, 1.0),
                ("alarm", "high", -15.0, 60, 1.0),
                ("alarm", "high", -10.0, 10, 1.0),
                ("warning", "low", -25.0, 30, 1.0),
            ),
            max_gap_min=15,
            gap_alarm_min=60,
        ),
        Profile(
            name="humidity",
            quantity="humidity",
            description="relative humidity at most 60 %",
            limits=_limits(("warning", "high", 60.0, 30, 2.0), ("alarm", "high", 75.0, 60, 2.0)),
            max_gap_min=60,
            gap_alarm_min=240,
        ),
    )
}

# Zone kind -> the presets a zone of that kind is monitored with unless assigned others.
KIND_PRESETS: dict[str, tuple[str, ...]] = {
    "cold_room": ("2-8C", "humidity"),
    "fridge": ("2-8C",),
    "truck_compartment": ("2-8C", "humidity"),
    "ambient": ("15-25C", "humidity"),
    "freezer": ("frozen",),
}


def presets_for_kind(kind: str) -> tuple[Profile, ...]:
    """The preset profiles of a zone kind (a cold room if the kind is unknown)."""
    return tuple(PRESETS[name] for name in KIND_PRESETS.get(kind, KIND_PRESETS["cold_room"]))


def with_zone_limits(profile: Profile, low: float | None, high: float | None) -> Profile:
    """A temperature preset with a zone's own limits in place of its range (decision 0024).

    On each side the zone sets, every level at the preset's edge (its innermost limit on
    that side: 8 C of 2-8C) moves to the zone's limit, keeping its level, delay and deadband;
    a level further out (> 12 C) stays where it is unless the zone's limit passes it, when it
    moves to the zone's limit too. A side with no level at all gets an alarm at the zone's
    limit, with the delay and deadband of the other side's edge alarm (else 60 min, none).
    Cumulative rules, gap limits and the freeze limit stay. Any other profile, and a zone
    without limits, are returned as they are."""
    if profile.quantity != "temperature" or (low is None and high is None):
        return profile
    edges = {side: _edge(profile, side) for side in ("high", "low")}
    limits: list[Limit] = []
    for lim in profile.limits:
        own = high if lim.kind == "high" else low
        if own is None:
            limits.append(lim)
        elif lim.limit == edges[lim.kind]:
            limits.append(replace(lim, limit=own))
        else:
            outer = max(lim.limit, own) if lim.kind == "high" else min(lim.limit, own)
            limits.append(replace(lim, limit=outer))
    for side, own in (("high", high), ("low", low)):
        if own is None or edges[side] is not None:
            continue
        other = "low" if side == "high" else "high"
        like = [
            x
            for x in profile.limits
            if x.kind == other and x.level == "alarm" and x.limit == edges[other]
        ]
        delay, deadband = (like[0].delay_min, like[0].deadband) if like else (60.0, 0.0)
        limits.append(
            Limit(level="alarm", kind=side, limit=own, delay_min=delay, deadband=deadband)
        )
    unique = {lim.rule: lim for lim in limits}  # a moved level may now repeat another
    shown = " to ".join("--" if v is None else f"{v:g}" for v in (low, high))
    return replace(
        profile,
        limits=tuple(unique.values()),
        description=f"{profile.description}; zone limits {shown} C".lstrip("; "),
    )


def _edge(profile: Profile, side: str) -> float | None:
    """The innermost limit on one side: the lowest high limit, or the highest low one."""
    found = [lim.limit for lim in profile.limits if lim.kind == side]
    if not found:
        return None
    return min(found) if side == "high" else max(found)
