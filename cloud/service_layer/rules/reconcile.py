"""The rules check themselves: a zone's excursions recomputed from scratch over its stored
readings, compared with what the incremental engine stored.

For each profile of the zone a fresh detector replays the stored readings from early enough
before `since` to rebuild every rule's state (`cloud.domain.late_data.reevaluate_zone`, the
same replay a late reading triggers), and its episodes are matched with the stored ones by
identity (profile, rule, level, start). An episode the replay finds that is not stored, or
stored with another end, peak or limit, is "differs"; a stored one the readings no longer
support is "unsupported". Nothing is written: the job only reports, and raises an alert per
zone whose record differs, so a person looks before anything is changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.readings import Zone
from cloud.domain.clock import utcnow
from cloud.domain.excursions import Episode
from cloud.domain.late_data import reevaluate_zone
from cloud.service_layer import alerts
from cloud.service_layer.rules.config import _suppressions
from cloud.service_layer.rules.history import _History
from cloud.service_layer.rules.profiles import zone_profiles

log = logging.getLogger(__name__)
NIGHTLY_SPAN = timedelta(days=2)  # the nightly job looks back this far in every zone


@dataclass(frozen=True)
class Difference:
    """One episode the from-scratch replay and the stored record disagree on."""

    what: str  # "differs" (replayed, not stored as such) | "unsupported" (stored only)
    episode: Episode

    def text(self) -> str:
        e = self.episode
        end = "open" if e.ended_at is None else f"{e.ended_at:%Y-%m-%d %H:%M}"
        return (
            f"{self.what}: {e.profile} {e.level} {e.rule} from {e.started_at:%Y-%m-%d %H:%M} "
            f"to {end} UTC, peak {e.peak}"
        )


@dataclass
class ZoneReconciliation:
    """What the replay of one zone since `since` found."""

    zone_id: str
    since: datetime
    differences: list[Difference] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.differences


def reconcile_zone(session: Session, zone_id: str, since: datetime) -> ZoneReconciliation:
    """Replay the zone's stored readings since `since` and compare with its stored episodes."""
    if session.get(Zone, zone_id) is None:
        raise LookupError(f"zone {zone_id!r} does not exist")
    report = ZoneReconciliation(zone_id, since)
    windows = _suppressions(session, {zone_id}, since).get(zone_id, [])
    for profile in zone_profiles(session, [zone_id]).get(zone_id, ()):
        outcome = reevaluate_zone(profile, windows, since, _History(session, zone_id, profile))
        report.differences += [Difference("differs", e) for e in outcome.changed]
        report.differences += [Difference("unsupported", e) for e in outcome.withdrawn]
    return report


def reconcile(
    session: Session,
    zone_ids: list[str] | None = None,
    since: datetime | None = None,
    now: datetime | None = None,
) -> list[ZoneReconciliation]:
    """Reconcile these zones (default: all) since `since` (default: NIGHTLY_SPAN ago); an
    alert for each zone whose record differs. Each zone is read on its own: one that fails
    is logged and the others go on."""
    now = now or utcnow()
    since = since or now - NIGHTLY_SPAN
    ids = zone_ids or list(session.scalars(select(Zone.id).order_by(Zone.id)))
    reports = []
    for zone_id in ids:
        try:
            report = reconcile_zone(session, zone_id, since)
        except LookupError:
            raise
        except Exception:
            log.exception("reconciling zone %s failed; the other zones go on", zone_id)
            session.rollback()
            continue
        reports.append(report)
        if not report.agrees:
            _alert(session, report, now)
    return reports


def _alert(session: Session, report: ZoneReconciliation, now: datetime) -> None:
    zone = session.get(Zone, report.zone_id)
    first = report.differences[0].text()
    more = len(report.differences) - 1
    log.error(
        "rules reconciliation: zone %s differs from a replay of its readings since %s: %s",
        report.zone_id,
        report.since,
        "; ".join(d.text() for d in report.differences),
    )
    alerts.raise_alert(
        session,
        kind="reconciliation",
        severity="critical",
        title=(
            f"Rules check: {report.zone_id}'s excursions differ from its readings since "
            f"{report.since:%Y-%m-%d %H:%M} UTC ({first}" + (f"; {more} more)" if more else ")")
        ),
        subject_kind="zone",
        subject_id=f"{report.zone_id}@{report.since:%Y%m%dT%H%M}"[:64],
        site_id=zone.site_id if zone else None,
        now=now,
    )
