"""The system of record: sites, zones, gateways, sensors, readings, rollups, dead letters.

Times are stored in UTC. On PostgreSQL columns are timestamptz; SQLite has no time zones,
so UTCDateTime stores naive UTC there and hands back aware datetimes on both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    case,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.adapters.orm.base import Base
from cloud.domain.clock import utcnow


class Site(Base):
    """A warehouse, a truck or a customer."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")


class Zone(Base):
    """A monitored space with its temperature limits."""

    __tablename__ = "zones"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    low: Mapped[float | None] = mapped_column(Float)
    high: Mapped[float | None] = mapped_column(Float)


class Gateway(Base):
    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    state_since: Mapped[datetime | None]
    last_seen: Mapped[datetime | None]
    buffer_depth: Mapped[int | None] = mapped_column(Integer)
    oldest_unsent_age_s: Mapped[float | None] = mapped_column(Float)
    dropped_records: Mapped[int | None] = mapped_column(Integer)
    # From the latest heartbeat (None: never heard, or an older gateway that does not say).
    last_heartbeat: Mapped[datetime | None]
    disk_free_bytes: Mapped[int | None] = mapped_column(BigInteger)
    clock_synchronised: Mapped[bool | None] = mapped_column(Boolean)
    next_seq: Mapped[int | None] = mapped_column(BigInteger)
    # The latest restart of the gateway's numbering below what was received (see sequences).
    seq_restart_at: Mapped[datetime | None]
    seq_restart_from: Mapped[int | None] = mapped_column(BigInteger)
    seq_restart_below: Mapped[int | None] = mapped_column(BigInteger)


class SequenceRange(Base):
    """A closed range of a gateway's sequence numbers received (readings, observations and
    events together), merged with its neighbours as records arrive: the holes between a
    gateway's ranges are its lost records (cloud.domain.sequences)."""

    __tablename__ = "sequence_ranges"

    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(BigInteger)
    # When the range's first records arrived: a hole below it is at least this old.
    since: Mapped[datetime]


class SequenceGap(Base):
    """A missing range the scheduler raised an alert for, until its records arrive."""

    __tablename__ = "sequence_gaps"

    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(BigInteger)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    raised_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class Sensor(Base):
    __tablename__ = "sensors"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), index=True)
    model: Mapped[str] = mapped_column(String(100))


class ReadingFields:
    """The columns of a reading as the gateway sent it; (gateway_id, seq) is its identity."""

    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sensor_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    quality: Mapped[str] = mapped_column(String(20))
    taken_at: Mapped[datetime]
    received_at: Mapped[datetime]


class Reading(ReadingFields, Base):
    """One measured value; (gateway_id, seq) is its identity from the gateway onwards.

    sensor_id is not a foreign key: readings may arrive before the gateway's inventory does
    (a truck's backlog after a restart of the cloud), and must never be refused for that.
    """

    __tablename__ = "readings"

    __table_args__ = (Index("readings_sensor_time", "sensor_id", "quantity", "taken_at"),)


class ImplausibleReading(ReadingFields, Base):
    """A reading whose time cannot be believed, kept with the reason (decision 0021).

    Never evaluated by the rules, never the latest reading, never in a rollup; (gateway_id,
    seq) is still its identity, so a redelivery leaves one row.
    """

    __tablename__ = "implausible_readings"

    reason: Mapped[str] = mapped_column(Text)


class LatestReading(Base):
    """The newest reading per sensor and quantity, kept by ingest for the live overview."""

    __tablename__ = "latest_readings"

    sensor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    quality: Mapped[str] = mapped_column(String(20))
    taken_at: Mapped[datetime]


class ReadingRollup(Base):
    """One hour of one sensor's quantity, kept by ingest in the transaction of its readings.

    Only readings with quality "ok" and a value count into n, sum, min and max; `bad` counts
    the others. min_at and max_at are the earliest times the extremes were taken. Rows exist
    for hours with at least one reading, so a long chart reads hours, not readings.
    """

    __tablename__ = "reading_rollups"

    sensor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    sum: Mapped[float] = mapped_column(Float)
    min: Mapped[float | None] = mapped_column(Float)
    max: Mapped[float | None] = mapped_column(Float)
    min_at: Mapped[datetime | None]
    max_at: Mapped[datetime | None]
    bad: Mapped[int] = mapped_column(Integer)


class DeadLetter(Base):
    """A message ingest could not accept, kept with the reason for a person to look at."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    topic: Mapped[str] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # whole up to 64 KiB, else the first KiB
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # of the whole message
    gateway_id: Mapped[str | None] = mapped_column(String(64))  # from the topic, if it names one
    size: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # bytes received
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # refusals counted
    replayed_at: Mapped[datetime | None]
    replay_outcome: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("dead_letters_gateway", "gateway_id", "received_at"),)

    @property
    def whole(self) -> bool:
        """Whether the payload was kept whole (a replay needs it so)."""
        return self.count == 1 and len(self.payload) == self.size


class Observation(Base):
    """An RFID tag seen at a read point, debounced at the gateway; identity (gateway_id, seq)."""

    __tablename__ = "observations"

    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    epc: Mapped[str] = mapped_column(String(128))
    id_uri: Mapped[str | None] = mapped_column(String(200))
    gtin: Mapped[str | None] = mapped_column(String(14))
    serial: Mapped[str | None] = mapped_column(String(40))
    sscc: Mapped[str | None] = mapped_column(String(18))
    read_point: Mapped[str] = mapped_column(String(64))
    antenna: Mapped[int | None] = mapped_column(Integer)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer)
    peak_rssi: Mapped[float | None] = mapped_column(Float)
    direction: Mapped[str | None] = mapped_column(String(8))
    received_at: Mapped[datetime]

    __table_args__ = (
        Index("observations_epc_time", "epc", "first_seen"),
        Index("observations_point_time", "read_point", "first_seen"),
    )


class GatewayEvent(Base):
    """What a gateway decided or noticed itself (its local alarm); identity (gateway_id, seq)."""

    __tablename__ = "gateway_events"

    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    zone_id: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    limit: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime]


class ReadPoint(Base):
    """An RFID antenna position: the zone a tag seen there is in, and the business step."""

    __tablename__ = "read_points"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), index=True)
    reader: Mapped[str] = mapped_column(String(64))
    business_step: Mapped[str] = mapped_column(String(32))


def merged_columns(stored: Any, incoming: Any) -> dict[str, Any]:
    """SET clause of the upsert: the stored row combined with the incoming one."""
    takes_min = (
        (stored.min.is_(None))
        | (incoming.min < stored.min)
        | ((incoming.min == stored.min) & (incoming.min_at < stored.min_at))
    )
    takes_max = (
        (stored.max.is_(None))
        | (incoming.max > stored.max)
        | ((incoming.max == stored.max) & (incoming.max_at < stored.max_at))
    )
    has_values = incoming.min.is_not(None)
    return {
        "n": stored.n + incoming.n,
        "sum": stored.sum + incoming.sum,
        "min": case((has_values & takes_min, incoming.min), else_=stored.min),
        "min_at": case((has_values & takes_min, incoming.min_at), else_=stored.min_at),
        "max": case((has_values & takes_max, incoming.max), else_=stored.max),
        "max_at": case((has_values & takes_max, incoming.max_at), else_=stored.max_at),
        "bad": stored.bad + incoming.bad,
    }


def upsert_rollups(insert: Any) -> Any:
    """INSERT .. ON CONFLICT DO UPDATE of rollup rows, for the dialect's `insert`."""
    stmt = insert(ReadingRollup.__table__)
    return stmt.on_conflict_do_update(
        index_elements=["sensor_id", "quantity", "bucket_start"],
        set_=merged_columns(ReadingRollup.__table__.c, stmt.excluded),
    )


PROPOSAL_STATES = ("pending", "accepted", "rejected", "withdrawn")


class MasterDataProposal(Base):
    """What a gateway's status said that differs from master data: a site's name, kind or
    time zone, a zone's name, kind or limits, a zone not known yet. Never applied from the
    wire; an admin accepts (the change is made, audited, with the reason) or rejects it.
    One pending proposal per subject and field: a status repeating it refreshes it."""

    __tablename__ = "master_data_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gateway_id: Mapped[str] = mapped_column(String(64), index=True)
    subject_kind: Mapped[str] = mapped_column(String(16))  # site | zone
    subject_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(32))  # a column, or "new" for a new zone
    current: Mapped[Any] = mapped_column(JSON, nullable=True)
    proposed: Mapped[Any] = mapped_column(JSON, nullable=True)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(f"state IN {PROPOSAL_STATES}", name="proposal_state"),
        Index(
            "proposal_one_pending",
            "subject_kind",
            "subject_id",
            "field",
            unique=True,
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )
