"""The gap sweep the scheduler runs: unknown-conditions excursions opened or escalated for zones
whose data stopped arriving."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import ZoneRuleState
from cloud.domain.excursions import ExcursionDetector
from cloud.domain.late_data import ZoneOutcome
from cloud.service_layer.rules.evaluation import _apply
from cloud.service_layer.rules.outcome import RulesOutcome, _as_system
from cloud.service_layer.rules.profiles import zone_profiles
from cloud.service_layer.rules.states import _save_state


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
