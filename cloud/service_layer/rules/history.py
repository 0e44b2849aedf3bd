"""A zone's stored record as the rules read it back: the reading tuples they are given, the
zone's sensors, and its readings and excursions, as late-data replays and the API ask for them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import Excursion
from cloud.adapters.orm.readings import Reading, Sensor
from cloud.domain.evidence import CALIBRATION_OVERDUE, USABLE_QUALITIES, usable
from cloud.domain.excursions import Episode, Sample
from cloud.domain.monitoring import Profile
from cloud.service_layer.message_batch import READING_COLUMNS
from cloud.service_layer.rules.outcome import WITHDRAWN

_SENSOR, _QUANTITY, _VALUE, _QUALITY, _TAKEN, _RECEIVED = (
    READING_COLUMNS.index(c)
    for c in ("sensor_id", "quantity", "value", "quality", "taken_at", "received_at")
)


def sample(
    sensor: str,
    taken_at: datetime,
    value: float | None,
    quality: str,
    received_at: datetime | None,
) -> Sample:
    """A stored or arriving reading as the rules take it: evidence if `ok` or calibration
    overdue (marked), no value if any other quality flag (decision 0027)."""
    value = finite(value)
    return Sample(
        sensor, taken_at, value, usable(quality, value), received_at, quality == CALIBRATION_OVERDUE
    )


def finite(value: float | None) -> float | None:
    """The value if it is a finite number, else None: the rules never see NaN or infinity
    (a detector state holding one is JSON PostgreSQL refuses, and loses a whole batch)."""
    return value if value is None or math.isfinite(value) else None


def _with_unstored(stored: list[Sample], unstored: Sequence[Sample]) -> list[Sample]:
    """Stored samples and those of a batch still being committed, each reading once."""
    if not unstored:
        return stored
    seen = {(s.sensor, s.taken_at, s.value, s.ok) for s in stored}
    merged = stored + [s for s in unstored if (s.sensor, s.taken_at, s.value, s.ok) not in seen]
    merged.sort(key=lambda s: s.taken_at)
    return merged


Unstored = dict[tuple[str, str], list[Sample]] | None  # (zone, quantity) -> being committed


class _History:
    """A zone's stored readings and episodes, as late-data re-evaluation reads them.

    `unstored`: samples of the zone's quantity in a batch the ingest writer is committing
    while the rules run (the rules commit after it); they count as stored."""

    def __init__(
        self, session: Session, zone_id: str, profile: Profile, unstored: Sequence[Sample] = ()
    ):
        self.session, self.zone_id, self.profile = session, zone_id, profile
        self.unstored = unstored
        self._sensors: list[str] | None = None  # read only if a replay needs them

    def _readings(self) -> Any:
        if self._sensors is None:
            self._sensors = _sensors_of(self.session, self.zone_id)
        return (Reading.sensor_id.in_(self._sensors), Reading.quantity == self.profile.quantity)

    def samples_since(self, start: datetime) -> list[Sample]:
        rows = self.session.execute(
            select(
                Reading.sensor_id,
                Reading.taken_at,
                Reading.value,
                Reading.quality,
                Reading.received_at,
            )
            .where(*self._readings(), Reading.taken_at >= start)
            .order_by(Reading.taken_at)
        )
        stored = [sample(s, t, v, q, r) for s, t, v, q, r in rows]
        return _with_unstored(stored, [s for s in self.unstored if s.taken_at >= start])

    def last_ok_before(self, t: datetime) -> datetime | None:
        stored = self.session.scalar(
            select(func.max(Reading.taken_at)).where(
                *self._readings(),
                Reading.taken_at < t,
                Reading.quality.in_(USABLE_QUALITIES),
                Reading.value.is_not(None),
            )
        )
        return max(
            (s.taken_at for s in self.unstored if s.ok and s.taken_at < t),
            default=stored,
            key=lambda at: at or datetime.min.replace(tzinfo=UTC),
        )

    def episodes_since(self, t: datetime) -> list[Episode]:
        rows = self.session.scalars(
            select(Excursion).where(
                Excursion.zone_id == self.zone_id,
                Excursion.profile_id == self.profile.name,
                or_(
                    Excursion.suppressed_reason.is_(None), Excursion.suppressed_reason != WITHDRAWN
                ),
                or_(
                    Excursion.ended_at.is_(None),
                    Excursion.ended_at >= t,
                    Excursion.started_at >= t,
                ),
            )
        )
        return [_episode(row) for row in rows]


def _episode(row: Excursion) -> Episode:
    return Episode(
        profile=row.profile_id,
        rule=row.rule,
        kind=row.kind,
        level=row.level,
        started_at=row.started_at,
        ended_at=row.ended_at,
        peak=row.peak,
        limit=row.limit,
        suppressed_reason=row.suppressed_reason,
    )


def _sensors_of(session: Session, zone_id: str) -> list[str]:
    return list(session.scalars(select(Sensor.id).where(Sensor.zone_id == zone_id)))


def zone_excursions(
    session: Session, zone_id: str, start: datetime, end: datetime
) -> list[Excursion]:
    """A zone's excursions that overlap [start, end], oldest first."""
    return list(
        session.scalars(
            select(Excursion)
            .where(
                Excursion.zone_id == zone_id,
                Excursion.started_at <= end,
                or_(Excursion.ended_at.is_(None), Excursion.ended_at >= start),
            )
            .order_by(Excursion.started_at, Excursion.id)
        )
    )
