"""A zone's chart: its sensors' values over any range, small enough to send to a browser.

Short ranges read the readings; longer ones read the hourly rollups. Either way the series is
thinned to a point budget by keeping, per time bucket, the minimum and the maximum at the
times they were taken, so an excursion's peak is always drawn however long the range.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by, array_agg
from sqlalchemy.orm import Session

from cloud.adapters.orm import quality
from cloud.adapters.orm.readings import Reading, ReadingRollup, Sensor, Site, Zone
from cloud.domain.thinning import Point, extremes, in_time_order
from cloud.service_layer.rules import profiles

RAW_SPAN = timedelta(hours=6)  # up to this, readings; beyond, hourly rollups...
RAW_ROWS = 5000  # ...unless the range holds this few readings (the rollups count them)
SPARSE_SPAN = timedelta(days=7)  # beyond this, a range is never worth reading raw
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class SensorTrace:
    """One sensor's quantity over the chart's range, thinned for a browser."""

    sensor_id: str
    quantity: str
    unit: str
    points: list[Point]


@dataclass(frozen=True)
class ExcursionSpan:
    id: int
    kind: str
    level: str
    started_at: datetime
    ended_at: datetime | None
    peak: float | None
    limit: float | None


@dataclass(frozen=True)
class ZoneChart:
    zone_id: str
    zone_name: str
    site_name: str
    timezone: str
    low: float | None
    high: float | None
    start: datetime
    end: datetime
    source: str  # "readings" | "rollups"
    series: list[SensorTrace]
    excursions: list[ExcursionSpan]
    levels: list[tuple[str, str, float, float]] = field(default_factory=list)
    # (level, high|low, limit, delay min) of the zone's temperature profile


@dataclass(frozen=True)
class HourRollup:
    """What the chart needs of one reading_rollups row."""

    bucket_start: datetime
    min: float
    max: float
    min_at: datetime
    max_at: datetime


def rollup_extremes(
    hours: Iterable[HourRollup], buckets: int, start: datetime, end: datetime
) -> list[Point]:
    """Hourly rollups merged into at most `buckets` buckets, keeping min and max with times."""
    width = max(HOUR, (end - start) / max(1, buckets))
    merged: dict[int, list[Point]] = {}
    for hour in hours:
        index = int((hour.bucket_start - start) / width)
        low, high = (hour.min_at, hour.min), (hour.max_at, hour.max)
        pair = merged.get(index)
        if pair is None:
            merged[index] = [low, high]
            continue
        if low[1] < pair[0][1]:
            pair[0] = low
        if high[1] > pair[1][1]:
            pair[1] = high
    points: list[Point] = []
    for index in sorted(merged):
        low, high = merged[index]
        points.extend(in_time_order(low, high))
    return points


def zone_chart(
    session: Session,
    zone_id: str,
    start: datetime,
    end: datetime,
    max_points: int = 1500,
    quantities: tuple[str, ...] = ("temperature",),
) -> ZoneChart:
    """The zone's series between start and end, within `max_points` points in all."""
    if end <= start:
        raise ValueError(
            f"chart range is empty: end {end.isoformat()} <= start {start.isoformat()}"
        )
    zone = session.get(Zone, zone_id)
    if zone is None:
        raise LookupError(f"zone {zone_id!r} does not exist")
    site = session.get(Site, zone.site_id)
    sensors = list(
        session.scalars(select(Sensor.id).where(Sensor.zone_id == zone_id).order_by(Sensor.id))
    )
    per_series = max(2, max_points // max(1, len(sensors) * len(quantities)))
    span = end - start
    raw = span <= RAW_SPAN or (
        span <= SPARSE_SPAN and _stored(session, sensors, quantities, start, end) <= RAW_ROWS
    )
    series = (
        _from_readings(session, sensors, quantities, start, end, per_series)
        if raw
        else _from_rollups(session, sensors, quantities, start, end, per_series)
    )
    return ZoneChart(
        zone_id=zone.id,
        zone_name=zone.name,
        site_name=site.name if site else zone.site_id,
        timezone=site.timezone if site else "UTC",
        low=zone.low,
        high=zone.high,
        start=start,
        end=end,
        source="readings" if raw else "rollups",
        series=series,
        excursions=_excursions(session, zone_id, start, end),
        levels=_levels(session, zone_id),
    )


def _from_readings(
    session: Session,
    sensors: list[str],
    quantities: tuple[str, ...],
    start: datetime,
    end: datetime,
    per_series: int,
) -> list[SensorTrace]:
    rows = session.execute(
        select(Reading.sensor_id, Reading.quantity, Reading.unit, Reading.taken_at, Reading.value)
        .where(
            Reading.sensor_id.in_(sensors),
            Reading.quantity.in_(quantities),
            Reading.taken_at >= start,
            Reading.taken_at <= end,
            Reading.quality.in_(("ok", "calibration_overdue")),
            Reading.value.is_not(None),
        )
        .order_by(Reading.sensor_id, Reading.quantity, Reading.taken_at)
    ).all()
    grouped: dict[tuple[str, str], list[Point]] = defaultdict(list)
    units: dict[tuple[str, str], str] = {}
    for sensor, quantity, unit, taken_at, value in rows:
        if value is None:  # the query keeps none
            continue
        grouped[(sensor, quantity)].append((taken_at, value))
        units[(sensor, quantity)] = unit
    return [
        SensorTrace(
            sensor,
            quantity,
            units[(sensor, quantity)],
            extremes(points, per_series // 2, start, end),
        )
        for (sensor, quantity), points in grouped.items()
    ]


def _stored(
    session: Session,
    sensors: list[str],
    quantities: tuple[str, ...],
    start: datetime,
    end: datetime,
) -> int:
    """How many good readings the range holds, from the rollups' counts."""
    return (
        session.scalar(
            select(func.coalesce(func.sum(ReadingRollup.n), 0)).where(
                ReadingRollup.sensor_id.in_(sensors),
                ReadingRollup.quantity.in_(quantities),
                ReadingRollup.bucket_start >= start.replace(minute=0, second=0, microsecond=0),
                ReadingRollup.bucket_start <= end,
            )
        )
        or 0
    )


def _from_rollups(
    session: Session,
    sensors: list[str],
    quantities: tuple[str, ...],
    start: datetime,
    end: datetime,
    per_series: int,
) -> list[SensorTrace]:
    first_hour = start.replace(minute=0, second=0, microsecond=0)
    if session.get_bind().dialect.name == "postgresql":
        return _merged_in_postgres(session, sensors, quantities, first_hour, end, per_series)
    rows = session.execute(
        select(
            ReadingRollup.sensor_id,
            ReadingRollup.quantity,
            ReadingRollup.bucket_start,
            ReadingRollup.min,
            ReadingRollup.max,
            ReadingRollup.min_at,
            ReadingRollup.max_at,
        )
        .where(
            ReadingRollup.sensor_id.in_(sensors),
            ReadingRollup.quantity.in_(quantities),
            ReadingRollup.bucket_start >= first_hour,
            ReadingRollup.bucket_start <= end,
            ReadingRollup.n > 0,
        )
        .order_by(ReadingRollup.sensor_id, ReadingRollup.quantity, ReadingRollup.bucket_start)
    ).all()
    grouped: dict[tuple[str, str], list[HourRollup]] = defaultdict(list)
    for sensor, quantity, bucket, low, high, low_at, high_at in rows:
        if low is None or high is None or low_at is None or high_at is None:
            continue  # only a rollup of no good reading (n = 0) lacks them: the query keeps none
        grouped[(sensor, quantity)].append(HourRollup(bucket, low, high, low_at, high_at))
    return [
        SensorTrace(
            sensor,
            quantity,
            "C" if quantity == "temperature" else "%RH",
            rollup_extremes(hours, per_series // 2, first_hour, end),
        )
        for (sensor, quantity), hours in grouped.items()
    ]


def _merged_in_postgres(
    session: Session,
    sensors: list[str],
    quantities: tuple[str, ...],
    first_hour: datetime,
    end: datetime,
    per_series: int,
) -> list[SensorTrace]:
    """rollup_extremes done by PostgreSQL: one row per wide bucket instead of per hour."""
    r = ReadingRollup
    width = max(HOUR, (end - first_hour) / max(1, per_series // 2)).total_seconds()
    bucket = func.floor(func.extract("epoch", r.bucket_start - first_hour) / width)
    query = (
        select(
            r.sensor_id,
            r.quantity,
            bucket.label("bucket"),
            func.min(r.min),
            array_agg(aggregate_order_by(r.min_at, r.min.asc(), r.min_at.asc()))[1],
            func.max(r.max),
            array_agg(aggregate_order_by(r.max_at, r.max.desc(), r.max_at.asc()))[1],
        )
        .where(
            r.sensor_id.in_(sensors),
            r.quantity.in_(quantities),
            r.bucket_start >= first_hour,
            r.bucket_start <= end,
            r.n > 0,
        )
        .group_by(r.sensor_id, r.quantity, bucket)
        .order_by(r.sensor_id, r.quantity, bucket)
    )
    grouped: dict[tuple[str, str], list[Point]] = defaultdict(list)
    for sensor, quantity, _, low, low_at, high, high_at in session.execute(query):
        grouped[(sensor, quantity)].extend(
            in_time_order((_aware(low_at), low), (_aware(high_at), high))
        )
    return [
        SensorTrace(sensor, quantity, "C" if quantity == "temperature" else "%RH", points)
        for (sensor, quantity), points in grouped.items()
    ]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _levels(session: Session, zone_id: str) -> list[tuple[str, str, float, float]]:
    """The limits the rules apply to the zone's temperature (its monitoring profiles)."""
    return sorted(
        {
            (limit.level, limit.kind, limit.limit, limit.delay_min)
            for profile in profiles.zone_profiles(session, [zone_id]).get(zone_id, ())
            if profile.quantity == "temperature"
            for limit in profile.limits
        }
    )


def _excursions(
    session: Session, zone_id: str, start: datetime, end: datetime
) -> list[ExcursionSpan]:
    excursion = quality.Excursion
    rows = session.scalars(
        select(excursion)
        .where(
            excursion.zone_id == zone_id,
            excursion.started_at <= end,
            or_(excursion.ended_at.is_(None), excursion.ended_at >= start),
        )
        .order_by(excursion.started_at)
    )
    return [
        ExcursionSpan(e.id, e.kind, e.level, e.started_at, e.ended_at, e.peak, e.limit)
        for e in rows
    ]


@dataclass(frozen=True)
class BatchPresence:
    """A batch's items in a zone during an interval."""

    batch_id: int
    lot: str
    gtin: str
    product: str
    status: str
    expires_on: str
    items: int
    first_in: datetime
    last_out: datetime | None  # None: some are still there
    here_now: int


def zone_batches(
    session: Session, zone_id: str, start: datetime, end: datetime
) -> list[BatchPresence]:
    """The batches whose items were in the zone at some time between start and end."""
    from cloud.adapters.orm.traceability import Batch, Item, Product
    from cloud.service_layer.custody import custody_in_zone

    intervals = custody_in_zone(session, zone_id, start, end)
    if not intervals:
        return []
    item_batch = dict(
        session.execute(
            select(Item.id, Item.batch_id).where(Item.id.in_({i.item_id for i in intervals}))
        ).all()
    )
    per_batch: dict[int, list] = defaultdict(list)
    for interval in intervals:
        per_batch[item_batch[interval.item_id]].append(interval)
    batches = session.execute(
        select(Batch, Product.name)
        .join(Product, Product.gtin == Batch.gtin)
        .where(Batch.id.in_(per_batch))
        .order_by(Batch.lot)
    ).all()
    result = []
    for batch, product in batches:
        spans = per_batch[batch.id]
        open_spans = [s for s in spans if s.ended_at is None]
        result.append(
            BatchPresence(
                batch_id=batch.id,
                lot=batch.lot,
                gtin=batch.gtin,
                product=product,
                status=batch.status,
                expires_on=batch.expires_on.isoformat(),
                items=len({s.item_id for s in spans}),
                first_in=min(s.started_at for s in spans),
                last_out=None if open_spans else max(s.ended_at for s in spans if s.ended_at),
                here_now=len({s.item_id for s in open_spans}),
            )
        )
    return result
