"""The cold-chain rules in the database: excursions from readings, the batches they exposed,
automatic holds, QA dispositions, and the questions asked of them.

`evaluate_readings` runs after each committed ingest batch. Each zone's detector state is a
row (zone_rule_states), locked while it is evaluated, so evaluation is incremental; readings
at or before a zone's watermark replay only the affected span (cloud.domain.excursions).
Everything runs in the caller's session and transaction; nothing here commits.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, func, literal, or_, select, tuple_, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from cloud.adapters.orm.alerting import NotificationChannel
from cloud.adapters.orm.people import User
from cloud.adapters.orm.quality import (
    Excursion,
    Exposure,
    Hold,
    RulesProgress,
    SuppressionWindow,
    ZoneRuleState,
)
from cloud.adapters.orm.readings import Reading, Sensor, Zone
from cloud.adapters.orm.traceability import Batch, CustodyInterval, Item, Product
from cloud.domain import holds as hold_rules
from cloud.domain.clock import utcnow
from cloud.domain.excursions import (
    Episode,
    ExcursionDetector,
    Sample,
    Suppression,
    ZoneOutcome,
    evaluate_zone,
    reevaluate_zone,
    stored_through,
)
from cloud.domain.exposure import (
    Presence,
    ZoneSeries,
    spent_minutes,
)
from cloud.domain.exposure import batch_exposures as overlap
from cloud.domain.exposure import remaining_budget as budget_left
from cloud.domain.mkt import durations, mkt, window_for
from cloud.domain.monitoring import Profile
from cloud.service_layer.notifications import active_channels
from cloud.service_layer.rules.profiles import zone_profiles
from cloud.service_layer.signatures import sign
from cloud.service_layer.store import READING_COLUMNS

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:rules"
SYSTEM_REASON = "automatic rule evaluation"
WITHDRAWN = "withdrawn: re-evaluated late data no longer shows it"
NO_PRODUCT = "no product in the zone"
_SENSOR, _QUANTITY, _VALUE, _QUALITY, _TAKEN, _RECEIVED = (
    READING_COLUMNS.index(c)
    for c in ("sensor_id", "quantity", "value", "quality", "taken_at", "received_at")
)


@dataclass
class RulesOutcome:
    """What an evaluation opened, closed or changed, and the holds it opened."""

    opened: list[Excursion] = field(default_factory=list)  # new rows (may be closed already)
    closed: list[Excursion] = field(default_factory=list)  # stored rows that ended now
    changed: list[Excursion] = field(default_factory=list)  # escalated, withdrawn, re-timed
    holds: list[Hold] = field(default_factory=list)
    triggers: dict[int, datetime] = field(default_factory=dict)  # excursion id -> received_at
    lots: dict[int, str] = field(default_factory=dict)  # batch id -> lot, of the holds opened
    # (zone, profile) -> (version, detector state) as written: kept by the caller once committed
    states: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)

    @property
    def excursions(self) -> list[Excursion]:
        """New and newly closed excursions: what alerting is told about."""
        return [*self.opened, *self.closed]


@contextmanager
def _as_system(session: Session) -> Iterator[None]:
    """Rule-made changes are audited as the rules engine, unless a person is acting."""
    saved = {k: session.info.get(k) for k in ("actor", "reason")}
    session.info.setdefault("actor", SYSTEM_ACTOR)
    if not session.info.get("reason"):
        session.info["reason"] = SYSTEM_REASON
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                session.info.pop(key, None)
            else:
                session.info[key] = value


def _ok(quality: str, value: float | None) -> bool:
    return quality == "ok" and value is not None


def _with_unstored(stored: list[Sample], unstored: Sequence[Sample]) -> list[Sample]:
    """Stored samples and those of a batch still being committed, each reading once."""
    if not unstored:
        return stored
    seen = {(s.sensor, s.taken_at, s.value, s.ok) for s in stored}
    merged = stored + [s for s in unstored if (s.sensor, s.taken_at, s.value, s.ok) not in seen]
    merged.sort(key=lambda s: s.taken_at)
    return merged


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
        stored = [Sample(s, t, v, _ok(q, v), r) for s, t, v, q, r in rows]
        return _with_unstored(stored, [s for s in self.unstored if s.taken_at >= start])

    def last_ok_before(self, t: datetime) -> datetime | None:
        stored = self.session.scalar(
            select(func.max(Reading.taken_at)).where(
                *self._readings(),
                Reading.taken_at < t,
                Reading.quality == "ok",
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
        rule=row.rule,
        kind=row.kind,
        level=row.level,
        started_at=row.started_at,
        ended_at=row.ended_at,
        peak=row.peak,
        limit=row.limit,
        suppressed_reason=row.suppressed_reason,
    )


def _suppressions(session: Session, zone_ids: set[str], since: datetime) -> dict[str, list]:
    found: dict[str, list[Suppression]] = defaultdict(list)
    for w in session.scalars(
        select(SuppressionWindow).where(
            SuppressionWindow.zone_id.in_(zone_ids), SuppressionWindow.ended_at >= since
        )
    ):
        found[w.zone_id].append(
            Suppression(
                started_at=w.started_at, ended_at=w.ended_at, reason=w.reason, grace_min=w.grace_min
            )
        )
    return found


class RulesConfig:
    """Sensor zones, zone profiles and suppression windows, kept between evaluations.

    The ingest worker evaluates every batch with the same few zones; reading their set-up
    each time cost more statements than the evaluation itself. Each entry is read again
    after `ttl_s`, so a profile assigned or a window added elsewhere applies within that
    time; `invalidate` drops everything at once (the worker calls it when a gateway's status
    changed sensors or zones). With ttl_s=0 nothing is kept. Used by one thread, except
    `invalidate`, which any thread may call: the owner drops the entries on its next call.
    """

    def __init__(self, ttl_s: float = 2.0):
        self.ttl_s = ttl_s
        self._zone_of: dict[str, tuple[str | None, float]] = {}
        self._profiles: dict[str, tuple[tuple[Profile, ...], float]] = {}
        # zone -> (windows ending at or after `since`, since, read at)
        self._windows: dict[str, tuple[list[Suppression], datetime, float]] = {}
        # (zone, profile) -> (version, detector state) this worker committed last
        self._states: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self._sites: dict[str, tuple[str | None, float]] = {}  # zone -> its site
        self._channels: tuple[list[NotificationChannel], float] | None = None
        self._generation = self._dropped = 0

    def invalidate(self) -> None:
        self._generation += 1

    def _drop_if_invalidated(self) -> None:
        if self._dropped != self._generation:
            self._dropped = self._generation
            self._zone_of.clear()
            self._profiles.clear()
            self._windows.clear()
            self._states.clear()
            self._sites.clear()
            self._channels = None

    def _stale(self, keys: set[str], cache: dict[str, Any]) -> set[str]:
        """Keys to read again: those missing or expired and, if there are any, every kept
        one past half its lifetime too, so the entries expire together (one read every
        `ttl_s`, not one for each batch that brings an expired zone)."""
        self._drop_if_invalidated()
        now = time.monotonic()
        stale = {k for k in keys if k not in cache or cache[k][-1] <= now - self.ttl_s}
        if stale:
            stale.update(k for k, v in cache.items() if v[-1] <= now - self.ttl_s / 2)
        return stale

    def _mapped(
        self, session: Session, keys: set[str], cache: dict[str, Any], key: Any, value: Any
    ) -> dict[str, str]:
        """`value` of each of `keys` (the `key` column), from the cache or read again."""
        stale = self._stale(keys, cache)
        if stale:
            now = time.monotonic()
            found = dict(session.execute(select(key, value).where(key.in_(stale))).all())
            for k in stale:
                cache[k] = (found.get(k), now)
        mapped = {k: cache[k][0] for k in keys}
        return {k: v for k, v in mapped.items() if v is not None}

    def zone_of(self, session: Session, sensor_ids: set[str]) -> dict[str, str]:
        return self._mapped(session, sensor_ids, self._zone_of, Sensor.id, Sensor.zone_id)

    def sites(self, session: Session, zones: set[str]) -> dict[str, str]:
        """The site of each zone (alerts name it)."""
        return self._mapped(session, zones, self._sites, Zone.id, Zone.site_id)

    def channels(self, session: Session) -> list[NotificationChannel]:
        """The active notification channels (read with the session, used after it)."""
        self._drop_if_invalidated()
        if self._channels is None or self._channels[1] <= time.monotonic() - self.ttl_s:
            self._channels = (active_channels(session), time.monotonic())
        return self._channels[0]

    def profiles(self, session: Session, zones: set[str]) -> dict[str, tuple[Profile, ...]]:
        stale = self._stale(zones, self._profiles)
        if stale:
            now = time.monotonic()
            for zone, found in zone_profiles(session, stale).items():
                self._profiles[zone] = (found, now)
        return {z: self._profiles[z][0] for z in zones}

    def suppressions(
        self, session: Session, zones: set[str], since: datetime
    ) -> dict[str, list[Suppression]]:
        self._drop_if_invalidated()
        fresh_after = time.monotonic() - self.ttl_s
        stale = {
            z
            for z in zones
            if z not in self._windows
            or self._windows[z][2] <= fresh_after
            or self._windows[z][1] > since
        }
        if stale:  # with every kept zone past half its lifetime, as _stale does
            now = time.monotonic()
            stale.update(z for z, kept in self._windows.items() if kept[2] <= now - self.ttl_s / 2)
            found = _suppressions(session, stale, since)
            for zone in stale:
                self._windows[zone] = (found.get(zone, []), since, now)
        result: dict[str, list[Suppression]] = defaultdict(list)
        for zone in zones:
            result[zone] = [w for w in self._windows[zone][0] if w.ended_at >= since]
        return result

    def kept_states(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
        """The detector states this worker committed last, of those keys it has."""
        self._drop_if_invalidated()
        return {k: self._states[k] for k in keys if k in self._states}

    def keep_states(self, states: dict[tuple[str, str], tuple[int, dict[str, Any]]]) -> None:
        """States just committed, with their versions (nothing is kept with ttl_s=0)."""
        if self.ttl_s > 0:
            self._states.update(states)

    def forget_states(self) -> None:
        """An evaluation was rolled back: the states it changed in place are not stored."""
        self._states.clear()


class StaleStates(Exception):
    """A kept detector state was changed by someone else since: evaluate again, afresh."""


def _sensors_of(session: Session, zone_id: str) -> list[str]:
    return list(session.scalars(select(Sensor.id).where(Sensor.zone_id == zone_id)))


def evaluate_readings(
    session: Session,
    readings: Sequence[tuple[Any, ...]],
    now: datetime | None = None,
    config: RulesConfig | None = None,
    unstored: bool = False,
) -> RulesOutcome:
    """Evaluate readings (tuples in READING_COLUMNS order) for every zone they touch.

    The readings are committed, or (`unstored`) being committed by the ingest writer while
    the rules run: what the rules read back of the zones' readings (late-data replays,
    exposure statistics) then includes them, and the caller commits only once they are.
    `config` keeps the zones' set-up between calls (the ingest worker's); without it, it is
    read afresh.
    """
    result = RulesOutcome()
    if not readings:
        return result
    config = config or RulesConfig(ttl_s=0)
    zone_of = config.zone_of(session, {r[_SENSOR] for r in readings})
    samples: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for r in readings:
        zone = zone_of.get(r[_SENSOR])
        if zone is not None:
            ok = _ok(r[_QUALITY], r[_VALUE])
            samples[(zone, r[_QUANTITY])].append(
                Sample(r[_SENSOR], r[_TAKEN], r[_VALUE], ok, r[_RECEIVED])
            )
    if not samples:
        return result
    zones = {zone for zone, _ in samples}
    profiles = config.profiles(session, zones)
    work = sorted(
        (zone, profile.name, profile)
        for zone in zones
        for profile in profiles.get(zone, ())
        if (zone, profile.quantity) in samples
    )
    if not work:
        return result
    table = ZoneRuleState.__table__
    # Core, not ORM objects: one executemany write per batch, and a locked read of the
    # states this worker has not kept (its own last commit, checked by version on write).
    keys = [(z, p) for z, p, _ in work]
    states = config.kept_states(keys)
    unknown = [k for k in keys if k not in states]
    if unknown:
        states.update(_locked_states(session, unknown))
    missing = [k for k in keys if k not in states]
    if missing:  # first readings of a zone: create its rows; a concurrent worker may too
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            dialect.insert(table).on_conflict_do_nothing(),
            [_state_row(z, p, {}, now) | {"watermark": None} for z, p in missing],
        )
        states.update(_locked_states(session, missing))
    earliest = min(map(itemgetter(_TAKEN), readings)) - timedelta(days=8)
    windows = config.suppressions(session, zones, earliest)
    written, pending = [], []
    marks: dict[str, list[datetime | None]] = defaultdict(list)  # zone -> its states' watermarks
    for zone, name, profile in work:
        zone_samples = samples[(zone, profile.quantity)]
        history = _History(session, zone, profile, zone_samples if unstored else ())
        version, state = states[(zone, name)]
        marks[zone].append(stored_through(state))
        outcome = evaluate_zone(profile, windows[zone], state, zone_samples, history)
        if outcome.replayed_from is not None:
            log.info("zone %s (%s): late data, replayed from %s", zone, name, outcome.replayed_from)
        row = _state_row(zone, name, outcome.state, now)
        row["version"] = version
        written.append(row)
        result.states[(zone, name)] = (version + 1, outcome.state)
        if outcome.changed or outcome.withdrawn:
            pending.append((zone, profile, outcome))
    if written:
        done = session.execute(
            _state_update(),
            [
                {
                    "z": row["zone_id"],
                    "p": row["profile_id"],
                    "v": row["version"],
                    "state": row["state"],
                    "watermark": row["watermark"],
                    "updated_at": row["updated_at"],
                }
                for row in written
            ],
        )
        if done.rowcount != len(written):  # a kept state was changed elsewhere meanwhile
            raise StaleStates(f"{len(written) - done.rowcount} detector states changed since")
    with _as_system(session):
        # what each zone may have stored: through the earliest watermark of its states as read
        stored_to = {z: None if None in m else min(m) for z, m in marks.items()}  # type: ignore[type-var]
        _apply(session, pending, result, samples if unstored else None, stored_to)
        session.flush()  # under the rules' name: the caller commits as whoever it is
    return result


def progress(session: Session, worker_id: str) -> datetime | None:
    """Arrival time through which the worker's committed readings have been evaluated."""
    return session.scalar(
        select(RulesProgress.received_through).where(RulesProgress.worker_id == worker_id)
    )


@lru_cache(maxsize=2)
def _progress_upsert(dialect_name: str) -> Any:
    """The rules mark's upsert, built once a dialect (it runs with every evaluation)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    table = RulesProgress.__table__
    insert = dialect.insert(table).values(
        worker_id=bindparam("worker_id"),
        received_through=bindparam("through"),
        updated_at=bindparam("at"),
    )
    newer = (func.greatest if dialect is postgresql else func.max)(
        table.c.received_through, insert.excluded.received_through
    )
    return insert.on_conflict_do_update(
        index_elements=[table.c.worker_id],
        set_={"received_through": newer, "updated_at": insert.excluded.updated_at},
    )


def record_progress(session: Session, worker_id: str, readings: Sequence[tuple[Any, ...]]) -> None:
    """Note, in the evaluation's transaction, that the worker evaluated these readings."""
    if not readings:
        return
    through = max(map(itemgetter(_RECEIVED), readings))
    session.execute(
        _progress_upsert(session.get_bind().dialect.name),
        {"worker_id": worker_id, "through": through, "at": utcnow()},
    )


def unevaluated_readings(
    session: Session,
    since: datetime,
    before: datetime,
    after: tuple[datetime, str, int] | None = None,
    limit: int = 5000,
) -> list[tuple[Any, ...]]:
    """Readings received in [since, before), in arrival order, after the key (received_at,
    gateway_id, seq) of the last one of the previous page: what a restarted worker re-evaluates."""
    table = Reading.__table__
    query = select(*(table.c[c] for c in READING_COLUMNS)).where(
        table.c.received_at >= since, table.c.received_at < before
    )
    if after is not None:
        key = (table.c.received_at, table.c.gateway_id, table.c.seq)
        query = query.where(
            tuple_(*key) > tuple_(*(literal(v, c.type) for v, c in zip(after, key, strict=True)))
        )
    order = (table.c.received_at, table.c.gateway_id, table.c.seq)
    return [tuple(row) for row in session.execute(query.order_by(*order).limit(limit))]


def _locked_states(session: Session, keys: list[tuple[str, str]]) -> dict:
    """(version, detector state) of (zone, profile) keys, locked until the caller's commit."""
    table = ZoneRuleState.__table__
    rows = session.execute(
        select(table.c.zone_id, table.c.profile_id, table.c.version, table.c.state)
        .where(tuple_(table.c.zone_id, table.c.profile_id).in_(keys))
        .order_by(table.c.zone_id, table.c.profile_id)
        .with_for_update()
    )
    return {(z, p): (version, state) for z, p, version, state in rows}


@lru_cache(maxsize=1)
def _state_update() -> Any:
    """Write a detector state if its version is still the one read or kept, and bump it."""
    table = ZoneRuleState.__table__
    return (
        update(table)
        .where(
            table.c.zone_id == bindparam("z"),
            table.c.profile_id == bindparam("p"),
            table.c.version == bindparam("v"),
        )
        .values(
            state=bindparam("state"),
            watermark=bindparam("watermark"),
            updated_at=bindparam("updated_at"),
            version=table.c.version + 1,
        )
    )


def _state_row(zone: str, name: str, state: dict[str, Any], now: datetime | None) -> dict:
    watermark = state.get("watermark")
    return {
        "zone_id": zone,
        "profile_id": name,
        "state": state,
        "watermark": None if watermark is None else datetime.fromtimestamp(watermark, UTC),
        "updated_at": now or utcnow(),
    }


def _save_state(row: ZoneRuleState, state: dict[str, Any], now: datetime | None) -> None:
    values = _state_row(row.zone_id, row.profile_id, state, now)
    row.state, row.watermark, row.updated_at = state, values["watermark"], values["updated_at"]
    flag_modified(row, "state")


def check_gaps(session: Session, now: datetime) -> RulesOutcome:
    """Open or escalate unknown-conditions excursions for zones whose data stopped (scheduler)."""
    result = RulesOutcome()
    rows = list(  # locked in key order, as the workers lock them: no deadlock between them
        session.scalars(
            select(ZoneRuleState)
            .order_by(ZoneRuleState.zone_id, ZoneRuleState.profile_id)
            .with_for_update()
        )
    )
    profiles = zone_profiles(session, {r.zone_id for r in rows})
    pending = []
    for row in rows:
        profile = next((p for p in profiles.get(row.zone_id, ()) if p.name == row.profile_id), None)
        if profile is None:
            continue
        detector = ExcursionDetector(profile, (), row.state)
        changed = detector.tick(now)
        if changed:
            _save_state(row, detector.snapshot(), now)
            pending.append((row.zone_id, profile, ZoneOutcome(changed, [], row.state)))
    with _as_system(session):
        _apply(session, pending, result)
        session.flush()
    return result


def add_suppression(
    session: Session, zone_id: str, start: datetime, end: datetime, reason: str, grace_min: float
) -> RulesOutcome:
    """Record a suppression window and re-evaluate the zone from its start."""
    if end <= start:
        raise ValueError(f"suppression window ends ({end.isoformat()}) before it starts")
    if not reason.strip() or grace_min <= 0:
        raise ValueError("a suppression window needs a reason and a grace period over 0 minutes")
    result = RulesOutcome()
    session.add(
        SuppressionWindow(
            zone_id=zone_id, started_at=start, ended_at=end, reason=reason, grace_min=grace_min
        )
    )
    session.flush()
    windows = _suppressions(session, {zone_id}, start - timedelta(days=8))[zone_id]
    pending = []
    for profile in zone_profiles(session, {zone_id})[zone_id]:
        state = session.get(ZoneRuleState, (zone_id, profile.name), with_for_update=True)
        if state is None or state.watermark is None or state.watermark < start:
            continue
        outcome = reevaluate_zone(profile, windows, start, _History(session, zone_id, profile))
        _save_state(state, outcome.state, None)
        pending.append((zone_id, profile, outcome))
    with _as_system(session):
        _apply(session, pending, result)
        session.flush()
    return result


# --- applying outcomes: excursion rows, then exposures, then holds, a flush for each ----------

Pending = list[tuple[str, Profile, ZoneOutcome]]


Unstored = dict[tuple[str, str], list[Sample]] | None  # (zone, quantity) -> being committed


def _apply(
    session: Session,
    pending: Pending,
    result: RulesOutcome,
    unstored: Unstored = None,
    stored_to: dict[str, datetime | None] | None = None,
) -> None:
    """Excursions, their exposures and holds, written in one flush (one audit append).

    `stored_to`: zone -> the watermark through which its episodes may be stored (see
    `stored_through`); episodes that start later are new, and not looked up."""
    if not pending:
        return
    with session.no_autoflush:
        triggers = _excursions(session, pending, result, unstored, stored_to)
    session.flush()
    result.triggers.update((row.id, at) for row, at in triggers)


def _excursions(
    session: Session,
    pending: Pending,
    result: RulesOutcome,
    unstored: Unstored = None,
    stored_to: dict[str, datetime | None] | None = None,
) -> list[tuple[Excursion, datetime]]:
    stored_to = stored_to or {}
    keys = sorted(
        (z, at)
        for z, starts in _starts_by_zone(pending).items()
        for at in starts
        if _maybe_stored(at, stored_to.get(z))
    )
    stored: dict[tuple[str, str, datetime], Excursion] = (
        {
            (row.zone_id, row.rule, row.started_at): row
            for row in session.scalars(  # one query for every zone of the batch
                select(Excursion).where(tuple_(Excursion.zone_id, Excursion.started_at).in_(keys))
            )
        }
        if keys
        else {}  # every episode starts after what its zone had stored: all new
    )
    touched: list[tuple[Excursion, Profile, datetime]] = []
    triggers: list[tuple[Excursion, datetime]] = []
    for zone_id, profile, outcome in pending:
        data_end = outcome.state.get("watermark")
        end_at = None if data_end is None else datetime.fromtimestamp(data_end, UTC)
        for e in outcome.changed:
            row = stored.get((zone_id, *e.key))
            if row is None:
                row = Excursion(
                    zone_id=zone_id, profile_id=profile.name, rule=e.rule, detected_at=utcnow()
                )
                session.add(row)
                result.opened.append(row)
            elif row.ended_at is None and e.ended_at is not None:
                result.closed.append(row)
            else:
                result.changed.append(row)
            row.kind, row.level, row.started_at, row.ended_at = (
                e.kind,
                e.level,
                e.started_at,
                e.ended_at,
            )
            row.peak, row.limit = e.peak, e.limit
            row.state = "open" if e.ended_at is None else "closed"
            if row.suppressed_reason != NO_PRODUCT or e.suppressed_reason is not None:
                row.suppressed_reason = e.suppressed_reason
            touched.append((row, profile, end_at or e.started_at))
            if e.trigger is not None:
                triggers.append((row, e.trigger))
        for e in outcome.withdrawn:
            row = stored.get((zone_id, *e.key))
            if row is not None:
                row.state, row.suppressed_reason = "closed", WITHDRAWN
                row.ended_at = row.ended_at or end_at or row.started_at
                result.changed.append(row)
    _expose(session, [t for t in touched if t[0].suppressed_reason != WITHDRAWN], result, unstored)
    return triggers


def _maybe_stored(started_at: datetime, stored_to: datetime | None) -> bool:
    return stored_to is None or started_at <= stored_to


def _starts_by_zone(pending: Pending) -> dict[str, set[datetime]]:
    starts: dict[str, set[datetime]] = defaultdict(set)
    for zone_id, _profile, outcome in pending:
        starts[zone_id].update(e.started_at for e in (*outcome.changed, *outcome.withdrawn))
    return starts


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


def _zone_values(
    session: Session,
    wanted: dict[tuple[str, str], tuple[datetime, datetime]],
    unstored: Unstored = None,
) -> dict[tuple[str, str], list[tuple[datetime, float]]]:
    """Valid values of each (zone, quantity) over its span, time-ordered: one round trip
    (UNION ALL), with those of readings being committed (`unstored`) each counted once."""
    parts = [
        select(literal(n).label("part"), Reading.sensor_id, Reading.taken_at, Reading.value).where(
            Reading.sensor_id.in_(select(Sensor.id).where(Sensor.zone_id == zone_id)),
            Reading.quantity == quantity,
            Reading.quality == "ok",
            Reading.value.is_not(None),
            Reading.taken_at >= start,
            Reading.taken_at <= end,
        )
        for n, ((zone_id, quantity), (start, end)) in enumerate(wanted.items())
    ]
    keys = list(wanted)
    found: dict[tuple[str, str], set[tuple[str, datetime, float]]] = {k: set() for k in keys}
    if parts:
        query = parts[0] if len(parts) == 1 else union_all(*parts)
        for n, sensor, t, v in session.execute(query):
            found[keys[n]].add((sensor, t, v))
    for key, (start, end) in wanted.items():
        for s in (unstored or {}).get(key, ()):
            if s.ok and s.value is not None and start <= s.taken_at <= end:
                found[key].add((s.sensor, s.taken_at, s.value))
    return {key: sorted((t, v) for _, t, v in values) for key, values in found.items()}


def _expose(
    session: Session,
    touched: list[tuple[Excursion, Profile, datetime]],
    result: RulesOutcome,
    unstored: Unstored = None,
) -> None:
    """Exposures of every batch present during each excursion, then the holds they call for."""
    if not touched:
        return
    found: list[tuple[Excursion, Any]] = []
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
    wanted = {}  # the zone's values, where a batch was present during a measured excursion
    for (zone_id, quantity), items in by_zone.items():
        spans = spans_of[(zone_id, quantity)]
        measured = [p for row, p, _ in items if row.kind != "unknown_conditions"]
        if measured and custody.get(zone_id):
            lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
            wanted[(zone_id, quantity)] = (lo - timedelta(minutes=measured[0].max_gap_min), hi)
    values_of = _zone_values(session, wanted, unstored)
    for (zone_id, quantity), items in by_zone.items():
        spans = spans_of[(zone_id, quantity)]
        presences = custody.get(zone_id, [])
        values = values_of.get((zone_id, quantity), [])
        for (row, _profile, _), (a, b) in zip(items, spans, strict=True):
            unknown = row.kind == "unknown_conditions"
            series = None
            if not unknown and presences:
                series = ZoneSeries(values, high=_high(row))
            exposed = overlap(a, b, presences, series, None if unknown else row.limit, _high(row))
            if unknown:
                if not exposed and row.suppressed_reason is None:
                    row.suppressed_reason = NO_PRODUCT
                elif exposed and row.suppressed_reason == NO_PRODUCT:
                    row.suppressed_reason = None
            found += [(row, x) for x in exposed]
    if not found:
        return
    earlier = {row.id for row, _ in found if row.id is not None}  # new rows have none stored
    stored = (
        {
            (x.excursion_id, x.batch_id): x
            for x in session.scalars(select(Exposure).where(Exposure.excursion_id.in_(earlier)))
        }
        if earlier
        else {}
    )
    for row, x in found:
        exposure = None if row.id is None else stored.get((row.id, x.batch_id))
        if exposure is None:
            exposure = Exposure(batch_id=x.batch_id)
            exposure.excursion = row  # its id once the flush has inserted the excursion
            session.add(exposure)
        exposure.items, exposure.minutes = x.items, x.minutes
        exposure.min_value, exposure.max_value = x.min_value, x.max_value
        exposure.degree_minutes = x.degree_minutes
        exposure.started_at, exposure.ended_at = x.started_at, x.ended_at
    _hold(session, found, result)  # the caller flushes excursions, exposures and holds


def _hold(session: Session, found: list[tuple[Excursion, Any]], result: RulesOutcome) -> None:
    """Hold each exposed batch a product rule says must be held; one undecided hold a batch."""
    batch_ids = {x.batch_id for _, x in found}
    batches: dict[int, Batch] = {}
    products: dict[str, Product] = {}
    undecided: dict[int, Hold] = {}
    for batch, product, hold in session.execute(  # batches, products, undecided holds: one query
        select(Batch, Product, Hold)
        .outerjoin(Product, Product.gtin == Batch.gtin)
        .outerjoin(Hold, (Hold.batch_id == Batch.id) & Hold.status.in_(hold_rules.UNDECIDED))
        .where(Batch.id.in_(batch_ids))
        .order_by(Hold.id)
    ):
        batches[batch.id] = batch
        if product is not None:
            products[product.gtin] = product
        if hold is not None:
            undecided.setdefault(batch.id, hold)
    # Stored exposures, except those being rewritten now, plus the ones just computed.
    spent = _spent(
        session,
        batch_ids,
        {row.id for row, _ in found if row.id is not None},
        [(x.batch_id, row.kind, x.started_at, x.ended_at) for row, x in found],
    )
    for row, batch_id in ((row, x.batch_id) for row, x in found):
        batch = batches.get(batch_id)
        if batch is None or batch.status in hold_rules.NOT_HELD:
            continue
        product = products.get(batch.gtin)
        budget = None if product is None else product.stability_budget_min
        reasons = hold_rules.hold_reasons(
            hold_rules.ExcursionFacts(
                kind=row.kind,
                level=row.level,
                rule=row.rule,
                suppressed=row.suppressed_reason is not None,
            ),
            hold_rules.ProductFacts(
                freeze_sensitive=bool(product and product.freeze_sensitive), budget_min=budget
            ),
            None if budget is None else budget_left(budget, spent.get(batch_id, 0.0)),
        )
        if not reasons:
            continue
        hold = undecided.get(batch_id)
        if hold is not None:
            new = [r for r in reasons if r not in hold.reason]
            if new:  # one decision per batch: further reasons join the hold QA has open
                hold.reason = f"{hold.reason}; {'; '.join(new)}"
            continue
        hold = Hold(
            batch_id=batch_id,
            reason="; ".join(reasons),
            excursion=row,  # its id once the flush has inserted the excursion
            opened_at=utcnow(),
            status="open",
        )
        session.add(hold)
        undecided[batch_id] = hold
        if batch.status == "available":
            batch.status = "held"
        result.holds.append(hold)
        result.lots[batch_id] = batch.lot
        log.info("batch %s held: %s (%s in %s)", batch_id, hold.reason, row.rule, row.zone_id)


def _spent(
    session: Session,
    batch_ids: set[int],
    rewritten: set[int] | None = None,
    fresh: Sequence[tuple[int, str, datetime, datetime]] = (),
) -> dict[int, float]:
    """Minutes out of range each batch has spent, over all its exposures."""
    query, values = _spent_query(), {"batches": list(batch_ids), "rewritten": list(rewritten or ())}
    spans: dict[int, list[tuple[str, datetime, datetime]]] = defaultdict(list)
    for batch_id, kind, a, b in [*session.execute(query, values), *fresh]:
        spans[batch_id].append((kind, a, b))
    return {batch_id: spent_minutes(s) for batch_id, s in spans.items()}


@lru_cache(maxsize=1)
def _spent_query() -> Any:
    """Some batches' exposures but those of some excursions (being rewritten): made once."""
    return (
        select(Exposure.batch_id, Excursion.kind, Exposure.started_at, Exposure.ended_at)
        .join(Excursion, Excursion.id == Exposure.excursion_id)
        .where(Exposure.batch_id.in_(bindparam("batches", expanding=True)))
        .where(Exposure.excursion_id.not_in(bindparam("rewritten", expanding=True)))
        .where(or_(Excursion.suppressed_reason.is_(None), Excursion.suppressed_reason != WITHDRAWN))
    )


# --- questions ----------------------------------------------------------------------------


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


def remaining_budget(session: Session, batch_id: int) -> float | None:
    """Minutes of the product's stability budget the batch has left (None: no budget set)."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise LookupError(f"batch {batch_id} does not exist")
    product = session.get(Product, batch.gtin)
    budget = None if product is None else product.stability_budget_min
    return budget_left(budget, _spent(session, {batch_id}).get(batch_id, 0.0))


def mkt_for_zone(session: Session, zone_id: str, start: datetime, end: datetime) -> float | None:
    """MKT of a zone's temperature over [start, end) (None: no valid readings)."""
    points = _zone_points(session, zone_id, start, end)
    return mkt(points) if points else None


def _zone_points(session: Session, zone_id: str, start: datetime, end: datetime) -> list:
    sensors = _sensors_of(session, zone_id)
    rows = session.execute(
        select(Reading.taken_at, func.avg(Reading.value))
        .where(
            Reading.sensor_id.in_(sensors),
            Reading.quantity == "temperature",
            Reading.quality == "ok",
            Reading.value.is_not(None),
            Reading.taken_at >= start - timedelta(hours=1),
            Reading.taken_at < end,
        )
        .group_by(Reading.taken_at)
        .order_by(Reading.taken_at)
    ).all()
    return durations([(t, float(v)) for t, v in rows], start, end)


def mkt_for_batch(session: Session, batch_id: int, now: datetime | None = None) -> float | None:
    """MKT over the batch's custody in the window of its product class (24 h or 30 days)."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise LookupError(f"batch {batch_id} does not exist")
    product = session.get(Product, batch.gtin)
    end = now or utcnow()
    start = end - window_for(None if product is None else product.high)
    spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for zone_id, a, b in session.execute(
        select(CustodyInterval.zone_id, CustodyInterval.started_at, CustodyInterval.ended_at)
        .join(Item, Item.id == CustodyInterval.item_id)
        .where(Item.batch_id == batch_id, CustodyInterval.started_at < end)
        .where(or_(CustodyInterval.ended_at.is_(None), CustodyInterval.ended_at > start))
    ):
        spans[zone_id].append((max(a, start), min(b or end, end)))
    points = []
    for zone_id, zone_spans in spans.items():
        for a, b in _merged(zone_spans):
            points += _zone_points(session, zone_id, a, b)
    return mkt(points) if points else None


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        elif b > a:
            merged.append((a, b))
    return merged


# --- holds and their disposition ----------------------------------------------------------


def open_holds(session: Session) -> list[Hold]:
    """Holds waiting for QA (open or under investigation), oldest first."""
    return list(
        session.scalars(
            select(Hold)
            .where(Hold.status.in_(hold_rules.UNDECIDED))
            .order_by(Hold.opened_at, Hold.id)
        )
    )


def _user(session: Session, user: User | str | int) -> User:
    if isinstance(user, User):
        return user
    found = (
        session.get(User, user)
        if isinstance(user, int)
        else session.scalar(select(User).where(User.username == user))
    )
    if found is None:
        raise LookupError(f"user {user!r} does not exist")
    return found


def disposition_hold(
    session: Session,
    hold_id: int,
    decision: str,
    user: User | str | int,
    password: str | None,
    meaning: str | None = None,
    reason: str = "",
) -> Hold:
    """QA decides a hold: release and reject are signed (password again), investigate is not."""
    hold = session.get(Hold, hold_id, with_for_update=True)
    if hold is None:
        raise LookupError(f"hold {hold_id} does not exist")
    if not reason.strip():
        raise hold_rules.DispositionError("a disposition needs a reason")
    status, needed = hold_rules.decide(hold.status, decision, meaning)
    if needed is not None and not password:
        raise hold_rules.DispositionError(f"a {decision} needs your password to sign it")
    signer = _user(session, user)
    previous = session.info.get("reason")
    session.info["reason"] = reason
    try:
        hold.status = status
        hold.decision_reason = reason
        if needed is not None:
            assert password is not None
            hold.decided_at, hold.decided_by = utcnow(), signer.id
            signature = sign(session, signer, password, hold, needed, reason)
            hold.signature_id = signature.id  # the link; the signature covers the decision
        batch = session.get(Batch, hold.batch_id)
        if batch is not None:
            others = session.scalar(
                select(func.count(Hold.id)).where(
                    Hold.batch_id == hold.batch_id,
                    Hold.id != hold.id,
                    Hold.status.in_(hold_rules.UNDECIDED),
                )
            )
            batch.status = hold_rules.batch_status_after(decision, batch.status, others or 0)
        session.flush()
    finally:
        if previous is None:
            session.info.pop("reason", None)
        else:
            session.info["reason"] = previous
    log.info("hold %s %s by %s", hold_id, status, signer.username)
    return hold
