"""The gap sweep the scheduler runs: unknown-conditions excursions opened for zones whose data
stopped arriving, one zone at a time: a zone that fails (a corrupt kept state, a row the
database refuses) is logged with its name and the others go on."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import ZoneRuleState
from cloud.domain.excursions import Episode, ExcursionDetector
from cloud.domain.late_data import ZoneOutcome
from cloud.domain.monitoring import Profile
from cloud.service_layer.rules.evaluation import _apply
from cloud.service_layer.rules.outcome import RulesOutcome, _as_system
from cloud.service_layer.rules.profiles import zone_profiles
from cloud.service_layer.rules.states import _save_state

log = logging.getLogger(__package__)


def check_gaps(session: Session, now: datetime) -> RulesOutcome:
    """Open unknown-conditions excursions for zones whose data stopped (the scheduler's job)."""
    result = RulesOutcome()
    rows = list(  # locked in key order, as the workers lock them: no deadlock between them
        session.scalars(
            select(ZoneRuleState)
            .order_by(ZoneRuleState.zone_id, ZoneRuleState.profile_id)
            .with_for_update()
        )
    )
    profiles = zone_profiles(session, {r.zone_id for r in rows})
    by_zone: dict[str, list[ZoneRuleState]] = defaultdict(list)
    for row in rows:
        by_zone[row.zone_id].append(row)
    for zone_id, zone_rows in by_zone.items():
        try:
            ticked = _ticked(zone_rows, profiles.get(zone_id, ()), now)
        except Exception:  # a state no detector can read: this zone only
            log.exception("gap sweep: zone %s skipped, its detector state is unreadable", zone_id)
            continue
        if not ticked:
            continue
        zone_result = RulesOutcome()
        try:
            with session.begin_nested(), _as_system(session):  # a savepoint: this zone only
                for row, _profile, detector, _ in ticked:
                    _save_state(row, detector.snapshot(), now)
                pending = [(zone_id, p, ZoneOutcome(ch, [], r.state)) for r, p, _, ch in ticked]
                _apply(session, pending, zone_result)
                session.flush()
        except Exception:
            log.exception("gap sweep: zone %s failed, its gaps wait for the next tick", zone_id)
            continue
        for name in ("opened", "closed", "changed", "holds"):
            getattr(result, name).extend(getattr(zone_result, name))
        result.triggers.update(zone_result.triggers)
        result.lots.update(zone_result.lots)
    return result


def _ticked(
    rows: list[ZoneRuleState], profiles: Sequence[Profile], now: datetime
) -> list[tuple[ZoneRuleState, Profile, ExcursionDetector, list[Episode]]]:
    """The zone's states whose detectors open a gap at `now`, with what they opened."""
    found = []
    for row in rows:
        profile = next((p for p in profiles if p.name == row.profile_id), None)
        if profile is None:
            continue
        detector = ExcursionDetector(profile, (), row.state)
        changed = detector.tick(now)
        if changed:
            found.append((row, profile, detector, changed))
    return found
