"""Exposures of batches to excursions: who was in the zone (custody), what the zone's values
were meanwhile, the exposure rows written, and a batch's exposures as asked for."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, literal, or_, select, union_all
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import Excursion, Exposure
from cloud.adapters.orm.readings import Reading, Sensor
from cloud.adapters.orm.traceability import CustodyInterval, Item
from cloud.domain.evidence import CALIBRATION_OVERDUE, OK, USABLE_QUALITIES, calibration_note
from cloud.domain.exposure import Presence, ZoneSeries
from cloud.domain.exposure import batch_exposures as overlap
from cloud.domain.monitoring import Profile
from cloud.service_layer.rules.history import Unstored
from cloud.service_layer.rules.holds import _hold
from cloud.service_layer.rules.outcome import NO_PRODUCT, RulesOutcome


def _presences(
    session: Session, spans: dict[str, tuple[datetime, datetime]]
) -> dict[str, list[Presence]]:
    """Custody in each zone overlapping its span: one query over custody_intervals."""
    lo, hi = min(a for a, _ in spans.values()), max(b for _, b in spans.values())
    rows = session.execute(_presences_query(), {"zones": list(spans), "lo": lo, "hi": hi})
    found: dict[str, list[Presence]] = defaultdict(list)
    for zone_id, i, b, s, e in rows:
        start, end = spans[zone_id]
        if s <= end and (e is None or e >= start):
            found[zone_id].append(Presence(i, b, s, e))
    return found


@lru_cache(maxsize=1)
def _presences_query() -> Any:
    """Custody intervals in some zones overlapping [lo, hi]: made once (an opening's path)."""
    return (
        select(
            CustodyInterval.zone_id,
            CustodyInterval.item_id,
            Item.batch_id,
            CustodyInterval.started_at,
            CustodyInterval.ended_at,
        )
        .join(Item, Item.id == CustodyInterval.item_id)
        .where(
            CustodyInterval.zone_id.in_(bindparam("zones", expanding=True)),
            CustodyInterval.started_at <= bindparam("hi"),
            or_(CustodyInterval.ended_at.is_(None), CustodyInterval.ended_at >= bindparam("lo")),
        )
    )


def _high(row: Excursion) -> bool:
    return " > " in row.rule or " >= " in row.rule


Evidence = list[tuple[str, datetime, float, str]]  # sensor, taken_at, value, quality


def _zone_values(
    session: Session,
    wanted: dict[tuple[str, str], tuple[datetime, datetime]],
    unstored: Unstored = None,
) -> dict[tuple[str, str], Evidence]:
    """The evidence of each (zone, quantity) over its span, time-ordered: readings of `ok`
    quality or calibration overdue (decision 0027), in one round trip (UNION ALL), with those
    of readings being committed (`unstored`) each counted once."""
    parts = [
        select(
            literal(n).label("part"),
            Reading.sensor_id,
            Reading.taken_at,
            Reading.value,
            Reading.quality,
        ).where(
            Reading.sensor_id.in_(select(Sensor.id).where(Sensor.zone_id == zone_id)),
            Reading.quantity == quantity,
            Reading.quality.in_(USABLE_QUALITIES),
            Reading.value.is_not(None),
            Reading.taken_at >= start,
            Reading.taken_at <= end,
        )
        for n, ((zone_id, quantity), (start, end)) in enumerate(wanted.items())
    ]
    keys = list(wanted)
    found: dict[tuple[str, str], set[tuple[str, datetime, float, str]]] = {k: set() for k in keys}
    if parts:
        query = parts[0] if len(parts) == 1 else union_all(*parts)
        for n, sensor, t, v, quality in session.execute(query):
            if v is not None and math.isfinite(v):  # the query keeps no None
                found[keys[n]].add((sensor, t, v, quality))
    for key, (start, end) in wanted.items():
        for s in (unstored or {}).get(key, ()):
            if s.ok and s.value is not None and start <= s.taken_at <= end:
                quality = CALIBRATION_OVERDUE if s.overdue else OK
                found[key].add((s.sensor, s.taken_at, s.value, quality))
    return {key: sorted(values, key=lambda r: (r[1], r[0])) for key, values in found.items()}


def _note(evidence: Evidence, start: datetime, end: datetime) -> str | None:
    """What the readings of [start, end] say of sensors past their calibration due date."""
    return calibration_note((s, t, q) for s, t, _, q in evidence if start <= t <= end)


def _expose(
    session: Session,
    touched: list[tuple[Excursion, Profile, datetime]],
    result: RulesOutcome,
    unstored: Unstored = None,
) -> None:
    """Exposures of every batch present during each excursion, then the holds they call for."""
    if not touched:
        return
    found: list[tuple[Excursion, Any, str | None]] = []
    by_zone: dict[tuple[str, str], list[tuple[Excursion, Profile, datetime]]] = defaultdict(list)
    for item in touched:
        by_zone[(item[0].zone_id, item[1].quantity)].append(item)
    spans_of = {
        key: [(row.started_at, row.ended_at or max(end, row.started_at)) for row, _, end in items]
        for key, items in by_zone.items()
    }
    zone_spans: dict[str, tuple[datetime, datetime]] = {}
    for (zone_id, _), spans in spans_of.items():
        lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
        was = zone_spans.get(zone_id, (lo, hi))
        zone_spans[zone_id] = (min(lo, was[0]), max(hi, was[1]))
    custody = _presences(session, zone_spans)
    wanted = {}  # the zone's evidence during its measured excursions: their notes and values
    for (zone_id, quantity), items in by_zone.items():
        spans = spans_of[(zone_id, quantity)]
        measured = [p for row, p, _ in items if row.kind != "unknown_conditions"]
        if measured:
            lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
            wanted[(zone_id, quantity)] = (lo - timedelta(minutes=measured[0].max_gap_min), hi)
    values_of = _zone_values(session, wanted, unstored)
    for (zone_id, quantity), items in by_zone.items():
        spans = spans_of[(zone_id, quantity)]
        presences = custody.get(zone_id, [])
        evidence = values_of.get((zone_id, quantity), [])
        values = [(t, v) for _, t, v, _ in evidence]
        for (row, _profile, _), (a, b) in zip(items, spans, strict=True):
            unknown = row.kind == "unknown_conditions"
            if not unknown:
                row.evidence_note = _note(evidence, a, b)
            series = None
            if not unknown and presences:
                series = ZoneSeries(values, high=_high(row))
            exposed = overlap(a, b, presences, series, None if unknown else row.limit, _high(row))
            if unknown:
                if not exposed and row.suppressed_reason is None:
                    row.suppressed_reason = NO_PRODUCT
                elif exposed and row.suppressed_reason == NO_PRODUCT:
                    row.suppressed_reason = None
            found += [(row, x, _note(evidence, x.started_at, x.ended_at)) for x in exposed]
    if not found:
        return
    earlier = {row.id for row, _, _ in found if row.id is not None}  # new rows have none stored
    stored = (
        {
            (x.excursion_id, x.batch_id): x
            for x in session.scalars(select(Exposure).where(Exposure.excursion_id.in_(earlier)))
        }
        if earlier
        else {}
    )
    for row, x, note in found:
        exposure = None if row.id is None else stored.get((row.id, x.batch_id))
        if exposure is None:
            exposure = Exposure(batch_id=x.batch_id)
            exposure.excursion = row  # its id once the flush has inserted the excursion
            session.add(exposure)
        exposure.items, exposure.minutes = x.items, x.minutes
        exposure.min_value, exposure.max_value = x.min_value, x.max_value
        exposure.degree_minutes = x.degree_minutes
        exposure.started_at, exposure.ended_at = x.started_at, x.ended_at
        exposure.evidence_note = note
    _hold(
        session, [(row, x) for row, x, _ in found], result
    )  # the caller flushes excursions, exposures and holds


def batch_exposures(session: Session, batch_id: int) -> list[tuple[Exposure, Excursion]]:
    """Every exposure of a batch across all zones (warehouse, truck, warehouse), oldest first."""
    return [
        (exposure, excursion)
        for exposure, excursion in session.execute(
            select(Exposure, Excursion)
            .join(Excursion, Excursion.id == Exposure.excursion_id)
            .where(Exposure.batch_id == batch_id)
            .order_by(Exposure.started_at, Exposure.id)
        )
    ]
