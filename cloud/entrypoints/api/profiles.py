"""Monitoring profiles: list and read them (presets and custom), and create a custom one
(admin, audited with a reason). Zones are assigned profiles by PUT /api/zones/<z>/profiles."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cloud.domain.monitoring import PRESETS, Profile, ProfileError, profile_from_dict
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.pagination import Page, page_of
from cloud.entrypoints.api.problems import Problem, invalid, not_found, parse_body, parse_query
from cloud.service_layer.rules import profiles as rules_profiles
from cloud.views import profiles as profiles_view

bp = Blueprint("profiles", __name__, url_prefix="/api/profiles")

WEEK_MIN = 7 * 24 * 60
LOWEST, HIGHEST = -100.0, 150.0  # C or %RH: a limit outside is a typo


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LevelBody(Strict):
    """Beyond `limit` (above for high, below for low) continuously for `delay_min` counts;
    it ends back inside by `deadband`."""

    level: Literal["warning", "alarm"]
    kind: Literal["high", "low"]
    limit: float = Field(ge=LOWEST, le=HIGHEST)
    delay_min: float = Field(0, ge=0, le=WEEK_MIN)
    deadband: float = Field(0, ge=0, le=20)


class CumulativeBody(Strict):
    """Minutes at or beyond `limit` summed over the last `window_min`; over `allowed_min`
    counts."""

    level: Literal["warning", "alarm"]
    direction: Literal["above", "below"]
    limit: float = Field(ge=LOWEST, le=HIGHEST)
    allowed_min: float = Field(ge=0, le=5 * WEEK_MIN)
    window_min: float = Field(ge=1, le=5 * WEEK_MIN)

    @field_validator("window_min")
    @classmethod
    def _longer_than_allowed(cls, value: float, info: ValidationInfo) -> float:
        allowed = info.data.get("allowed_min")
        if allowed is not None and allowed >= value:
            raise ValueError(f"must be longer than allowed_min {allowed:g}")
        return value


class NewProfile(Body):
    """A custom monitoring profile; a change of what counts as an excursion needs a reason."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._%-]*$")
    description: str = Field("", max_length=200)
    quantity: Literal["temperature", "humidity"] = "temperature"
    limits: list[LevelBody] = Field(min_length=1, max_length=20)
    cumulative: list[CumulativeBody] = Field(default_factory=list, max_length=10)
    max_gap_min: float = Field(15, ge=1, le=WEEK_MIN)
    gap_alarm_min: float | None = Field(None, ge=1, le=WEEK_MIN, description="4 x max_gap_min")
    freeze_limit: float | None = Field(None, ge=LOWEST, le=HIGHEST)
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("limits")
    @classmethod
    def _a_range(cls, limits: list[LevelBody], info: ValidationInfo) -> list[LevelBody]:
        highs = [x.limit for x in limits if x.kind == "high"]
        lows = [x.limit for x in limits if x.kind == "low"]
        if highs and lows and min(highs) <= max(lows):
            raise ValueError(
                f"the range is inverted: high limit {min(highs):g} is not above "
                f"low limit {max(lows):g}"
            )
        if info.data.get("quantity") == "humidity" and any(not 0 <= x.limit <= 100 for x in limits):
            raise ValueError("a humidity limit is a relative humidity, 0 to 100 %")
        rules = [(x.level, x.kind, x.limit, x.delay_min) for x in limits]
        if len(set(rules)) != len(rules):
            raise ValueError("two levels are the same rule (level, kind, limit and delay)")
        return limits

    @field_validator("gap_alarm_min")
    @classmethod
    def _not_under_max_gap(cls, value: float | None, info: ValidationInfo) -> float | None:
        gap = info.data.get("max_gap_min")
        if value is not None and gap is not None and value < gap:
            raise ValueError(f"must be at least max_gap_min {gap:g}")
        return value

    def profile(self) -> Profile:
        """The domain's profile (validated there once more)."""
        return profile_from_dict(self.model_dump(exclude={"reason"}, exclude_none=True))


def profile_json(p: Profile) -> dict[str, Any]:
    return {
        "name": p.name,
        "preset": p.name in PRESETS,
        "description": p.description,
        "quantity": p.quantity,
        "limits": [
            {
                "level": x.level,
                "kind": x.kind,
                "limit": x.limit,
                "delay_min": x.delay_min,
                "deadband": x.deadband,
            }
            for x in p.limits
        ],
        "cumulative": [
            {
                "level": c.level,
                "direction": c.direction,
                "limit": c.limit,
                "allowed_min": c.allowed_min,
                "window_min": c.window_min,
            }
            for c in p.cumulative
        ],
        "max_gap_min": p.max_gap_min,
        "gap_alarm_min": p.gap_alarm_min,
        "freeze_limit": p.freeze_limit,
        "rules": [x.rule for x in p.limits] + [c.rule for c in p.cumulative],
    }


@bp.get("")
@endpoint("read", query=Page)
def list_profiles() -> Any:
    """The presets and the custom profiles, by name."""
    page = parse_query(Page)
    return page_of(profiles_view.profiles(get_db()), page, profile_json)


@bp.get("/<name>")
@endpoint("read")
def get_profile(name: str) -> Any:
    """One profile, a preset or a custom one."""
    found = profiles_view.profile_named(get_db(), name)
    if found is None:
        raise not_found(f"monitoring profile {name}")
    return jsonify(profile_json(found))


@bp.post("")
@endpoint("profiles", body=NewProfile, status=201)
def create_profile() -> Any:
    """Store a custom profile (audited with the reason); assign it to zones with PUT
    /api/zones/<z>/profiles. A profile is never changed: store another and assign that."""
    given = parse_body(NewProfile)
    try:
        profile = given.profile()
    except ProfileError as exc:
        raise invalid(422, str(exc), [{"field": "(body)", "message": str(exc)}]) from exc
    db = get_db()
    if given.name in PRESETS or profiles_view.profile_named(db, given.name) is not None:
        what = "a preset" if given.name in PRESETS else "a stored profile"
        raise Problem(409, "conflict", "Conflict", f"{given.name!r} is {what} already")
    rules_profiles.save_profile(db, profile)
    db.commit()
    return jsonify(profile_json(profile)), 201
