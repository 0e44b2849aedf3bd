"""Evaluating readings: each zone's detector state advanced with a batch's readings, and the
outcomes written as excursion rows, then exposures, then holds.

`evaluate_readings` runs after each committed ingest batch. Each zone's detector state is a
row (zone_rule_states), locked while it is evaluated, so evaluation is incremental; readings
at or before a zone's watermark replay only the affected span (cloud.domain.excursions).
Everything runs in the caller's session and transaction; nothing here commits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import CursorResult, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import Excursion, ZoneRuleState
from cloud.domain.clock import utcnow
from cloud.domain.excursions import Sample
from cloud.domain.late_data import ZoneOutcome, evaluate_zone, stored_through
from cloud.domain.monitoring import Profile
from cloud.service_layer.rules.config import RulesConfig
from cloud.service_layer.rules.exposure import _expose
from cloud.service_layer.rules.history import (
    _QUALITY,
    _QUANTITY,
    _RECEIVED,
    _SENSOR,
    _TAKEN,
    _VALUE,
    Unstored,
    _History,
    sample,
)
from cloud.service_layer.rules.outcome import NO_PRODUCT, WITHDRAWN, RulesOutcome, _as_system
from cloud.service_layer.rules.states import StaleStates, _locked_states, _state_row, _state_update

log = logging.getLogger(__package__)  # the package's name: log lines read as they always did


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
    sensors = {r[_SENSOR] for r in readings}
    zone_of = config.zone_of(session, sensors)
    owner = config.owners(session, sensors)
    samples: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for r in readings:
        zone = zone_of.get(r[_SENSOR])
        # another gateway's sensor: the store refused the reading (a dead letter)
        if zone is not None and owner.get(r[_SENSOR]) == r[0]:
            samples[(zone, r[_QUANTITY])].append(
                sample(r[_SENSOR], r[_TAKEN], r[_VALUE], r[_QUALITY], r[_RECEIVED])
            )
    if not samples:
        return result
    zones = {zone for zone, _ in samples}
    profiles = config.profiles(session, zones)
    work = _work(profiles, samples)
    # Core, not ORM objects: one executemany write per batch, and a locked read of the
    # states this worker has not kept (its own last commit, checked by version on write).
    keys = [(z, p) for z, p, _ in work]
    states = config.kept_states(keys)
    unknown = [k for k in keys if k not in states]
    renew = {z for z, _ in unknown} - config.profiles_read
    if renew:  # states not kept: the set-up kept with them may be out of date too
        profiles.update(config.renew_profiles(session, renew))
        work = _work(profiles, samples)
        keys = [(z, p) for z, p, _ in work]
        states = config.kept_states(keys)
        unknown = [k for k in keys if k not in states]
    if not work:
        return result
    table = ZoneRuleState.__table__
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
        # an UPDATE's result is a CursorResult, which Session.execute is not typed to say
        done = cast(
            "CursorResult[Any]",
            session.execute(
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
            ),
        )
        if done.rowcount != len(written):  # a kept state was changed elsewhere meanwhile
            raise StaleStates(f"{len(written) - done.rowcount} detector states changed since")
    with _as_system(session):
        # what each zone may have stored: through the earliest watermark of its states as read
        stored_to = {
            z: None if None in m else min(t for t in m if t is not None) for z, m in marks.items()
        }
        _apply(session, pending, result, samples if unstored else None, stored_to)
        session.flush()  # under the rules' name: the caller commits as whoever it is
    return result


def _work(
    profiles: dict[str, tuple[Profile, ...]], samples: dict[tuple[str, str], list[Sample]]
) -> list[tuple[str, str, Profile]]:
    """(zone, profile name, profile) of every profile whose quantity the samples bring."""
    return sorted(
        (zone, profile.name, profile)
        for zone, found in profiles.items()
        for profile in found
        if (zone, profile.quantity) in samples
    )


# --- applying outcomes: excursion rows, then exposures, then holds, a flush for each ----------

Pending = list[tuple[str, Profile, ZoneOutcome]]


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
    # a row's identity: its zone and its episode's key (profile, rule, level, start)
    stored: dict[tuple[str, str, str, str, datetime], Excursion] = (
        {
            (row.zone_id, row.profile_id, row.rule, row.level, row.started_at): row
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
                    zone_id=zone_id, profile_id=e.profile, rule=e.rule, detected_at=utcnow()
                )
                stored[(zone_id, *e.key)] = row  # a later outcome of the batch finds it
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
