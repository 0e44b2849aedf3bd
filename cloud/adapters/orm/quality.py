"""The quality model: monitoring profiles, excursions, exposures and holds.

Profiles say what counts as an excursion in a zone; excursions are what the rules found in
the readings; exposures join an excursion with the batches present in its zone (custody);
holds block a batch until QA dispositions it. The meaning of each rule lives in
cloud.domain (monitoring, excursions, exposure); this module only stores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloud.adapters.orm.audit import audited
from cloud.adapters.orm.base import Base, one_of
from cloud.adapters.orm.readings import Reading
from cloud.domain.clock import utcnow

ExcursionKind = Literal["high", "low", "freezing", "humidity", "cumulative", "unknown_conditions"]
EXCURSION_KINDS: tuple[ExcursionKind, ...] = get_args(ExcursionKind)
LEVELS = ("warning", "alarm")
EXCURSION_STATES = ("open", "closed")
HOLD_STATUSES = ("open", "investigating", "released", "rejected")
LIMIT_KINDS = ("high", "low")
DIRECTIONS = ("above", "below")


@audited
class MonitoringProfile(Base):
    """A named set of limits; its levels and cumulative rules are rows of their own."""

    __tablename__ = "monitoring_profiles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[str] = mapped_column(String(32), default="temperature")
    max_gap_min: Mapped[float] = mapped_column(Float)  # no valid reading this long: unknown
    gap_alarm_min: Mapped[float] = mapped_column(Float)  # a gap this long is alarm level
    freeze_limit: Mapped[float | None] = mapped_column(Float)  # at or below: freezing


@audited
class MonitoringLevel(Base):
    """One limit of a profile: out of range continuously for delay_min counts; the deadband
    is how far back inside the limit a reading must be to end the episode."""

    __tablename__ = "monitoring_levels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(ForeignKey("monitoring_profiles.id"), index=True)
    level: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(8))  # high | low
    limit: Mapped[float] = mapped_column(Float)
    delay_min: Mapped[float] = mapped_column(Float)
    deadband: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (
        one_of("level", LEVELS, "monitoring_levels_level"),
        one_of("kind", LIMIT_KINDS, "monitoring_levels_kind"),
    )


@audited
class CumulativeRule(Base):
    """Minutes above (or below) a limit accumulated over a window; more than allowed counts."""

    __tablename__ = "cumulative_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(ForeignKey("monitoring_profiles.id"), index=True)
    level: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str] = mapped_column(String(8))  # above: >= limit; below: <= limit
    limit: Mapped[float] = mapped_column(Float)
    allowed_min: Mapped[float] = mapped_column(Float)
    window_min: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        one_of("level", LEVELS, "cumulative_rules_level"),
        one_of("direction", DIRECTIONS, "cumulative_rules_direction"),
    )


@audited
class ZoneProfile(Base):
    """A profile assigned to a zone; a zone without one gets the presets of its kind."""

    __tablename__ = "zone_profiles"

    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(ForeignKey("monitoring_profiles.id"), primary_key=True)


@audited
class SuppressionWindow(Base):
    """A planned disturbance (door open while receiving, truck loading): a grace period added
    to the alarm delay. An excursion it absorbs is recorded with the reason, not hidden."""

    __tablename__ = "suppression_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(200))
    grace_min: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("suppression_zone_time", "zone_id", "started_at"),)


class ZoneRuleState(Base):
    """The excursion detector of one zone and profile, persisted between evaluations.

    `version` goes up with every change (the ORM checks and bumps it; the rules' own update
    does too): an ingest worker keeps the states it wrote and uses them while their version
    is still the stored one (decision 0016)."""

    __tablename__ = "zone_rule_states"

    zone_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    watermark: Mapped[datetime | None]  # the newest reading time evaluated
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=0, server_default="0")

    __mapper_args__ = {"version_id_col": version}


class RulesProgress(Base):
    """How far an ingest worker's rules got: every reading it committed that was received
    before `received_through` has been evaluated (a restarted worker catches up from it)."""

    __tablename__ = "rules_progress"

    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_through: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuarantinedReading(Base):
    """A stored reading the rules could not evaluate (an error that is not the database's
    being away), kept with the reason for a person to look at; the rules went on without it
    (decision 0022). Its identity is the reading's, (gateway_id, seq)."""

    __tablename__ = "quarantined_readings"

    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sensor_id: Mapped[str] = mapped_column(String(64))
    taken_at: Mapped[datetime]
    received_at: Mapped[datetime]
    worker_id: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    quarantined_at: Mapped[datetime] = mapped_column(default=utcnow)


# The catch-up reads readings by arrival: a BRIN index on PostgreSQL (arrival order is
# insertion order, so it stays a few pages and costs ingest next to nothing).
Index("readings_received", Reading.__table__.c.received_at, postgresql_using="brin")


@audited
class Excursion(Base):
    """A zone out of its limits (or of unknown conditions), from the times readings were taken."""

    __tablename__ = "excursions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    zone_id: Mapped[str] = mapped_column(String(64))
    profile_id: Mapped[str] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(100))  # which limit of the profile
    kind: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    peak: Mapped[float | None] = mapped_column(Float)
    limit: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(8), default="open")
    suppressed_reason: Mapped[str | None] = mapped_column(String(200))
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "1 of 2 sensors calibration overdue since ...": evidence used, and marked (decision 0027)
    evidence_note: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        one_of("kind", EXCURSION_KINDS, "excursions_kind"),
        one_of("level", LEVELS, "excursions_level"),
        one_of("state", EXCURSION_STATES, "excursions_state"),
        # an episode's key in its zone (cloud.domain.excursions.Episode.key, decision 0020)
        UniqueConstraint(
            "zone_id", "profile_id", "rule", "level", "started_at", name="excursions_identity"
        ),
        Index("excursions_zone_time", "zone_id", "started_at"),
    )


@audited
class Exposure(Base):
    """A batch present in the zone of an excursion: for how long and to what."""

    __tablename__ = "exposures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    excursion_id: Mapped[int] = mapped_column(ForeignKey("excursions.id"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    items: Mapped[int] = mapped_column(Integer, default=0)
    minutes: Mapped[float] = mapped_column(Float)
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    degree_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    evidence_note: Mapped[str | None] = mapped_column(String(200))  # as the excursion's
    # Set on a new exposure of a new excursion: both go out in one flush, in order.
    excursion: Mapped[Excursion] = relationship(lazy="raise_on_sql")

    __table_args__ = (UniqueConstraint("excursion_id", "batch_id", name="exposures_identity"),)


@audited
class Hold(Base):
    """A batch frozen for QA: why, since when, and how QA decided."""

    __tablename__ = "holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    excursion_id: Mapped[int | None] = mapped_column(ForeignKey("excursions.id"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="open")
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signature_id: Mapped[int | None] = mapped_column(ForeignKey("signatures.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # A two-person hold's first signature: who reviewed it, and when (the decision is another's)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]
    evidence_note: Mapped[str | None] = mapped_column(String(200))  # as its excursion's
    excursion: Mapped[Excursion | None] = relationship(lazy="raise_on_sql")

    __table_args__ = (one_of("status", HOLD_STATUSES, "holds_status"),)
