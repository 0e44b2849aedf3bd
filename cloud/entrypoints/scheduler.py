"""The scheduler process: on every tick, raise alerts for excursions and holds that have
none and for records a gateway lost, block expired batches, warn of expiring ones, escalate
and remind unacknowledged alerts, deliver the notifications that are due, and once a night
check every zone's excursions against a replay of its readings (the rules' reconciliation).
Given the audit key, it also seals new audit entries every few seconds and checkpoints the
audit trail's head outside the database every few minutes.

Run one per installation (`coldchain-cloud scheduler`). Every step is idempotent and reads
the time from the clock it is given, so a test drives it tick by tick on a clock it moves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from cloud.domain.alerts import Backoff, EscalationPolicy
from cloud.domain.clock import utcnow
from cloud.service_layer import alerts as alerts_service
from cloud.service_layer import expiry, sequences
from cloud.service_layer import notifications as notify
from cloud.service_layer import rules as rules_service
from cloud.service_layer.audit_keeping import AuditKeeper
from cloud.service_layer.rules import reconcile

log = logging.getLogger(__name__)
ACTOR = "scheduler"


@dataclass(frozen=True, kw_only=True)
class SchedulerConfig:
    policy: EscalationPolicy = field(default_factory=EscalationPolicy)
    backoff: Backoff = field(default_factory=Backoff)
    interval_s: float = 30.0
    # How long a gap in a gateway's sequence numbers may stay open before it is an alert:
    # records of one gateway may arrive out of order (a backlog, redeliveries).
    sequence_grace_s: float = 900.0
    # The nightly reconciliation runs at the first tick at or after this UTC hour each day.
    reconcile_hour_utc: int = 2


@dataclass
class TickReport:
    at: datetime
    raised: int = 0
    expired: int = 0
    expiry_warnings: int = 0
    gaps: int = 0
    sequence_alerts: int = 0
    zones_reconciled: int = 0
    zones_differing: int = 0
    escalated: int = 0
    reminded: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    sealed: int = 0
    checkpointed: bool = False


class Scheduler:
    """Runs the periodic jobs against the database, on `clock`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: SchedulerConfig | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        senders: Mapping[str, notify.Sender] | None = None,
        audit: AuditKeeper | None = None,
    ):
        self.sessions, self.clock, self.audit = sessions, clock, audit
        self.config = config or SchedulerConfig()
        self.senders = senders if senders is not None else notify.default_senders()
        # The UTC day the nightly check last ran: a scheduler started after tonight's hour
        # waits for tomorrow's rather than reading every zone at once on start.
        started = self.clock()
        passed = started.hour >= self.config.reconcile_hour_utc
        self.reconciled_on: date = (started if passed else started - timedelta(days=1)).date()

    def tick(self) -> TickReport:
        """One round of every job; a job that fails is logged and the others still run."""
        now = self.clock()
        report = TickReport(now)
        jobs: list[tuple[str, Callable[[Session], None]]] = [
            (
                "monitoring gaps",
                lambda s: setattr(report, "gaps", len(rules_service.check_gaps(s, now).opened)),
            ),
            ("sequence continuity", lambda s: self._sequences(s, now, report)),
            (
                "alerts for new excursions and holds",
                lambda s: setattr(report, "raised", len(alerts_service.raise_pending(s, now))),
            ),
            (
                "block expired",
                lambda s: setattr(report, "expired", len(expiry.block_expired(s, now))),
            ),
            (
                "expiry warnings",
                lambda s: setattr(report, "expiry_warnings", len(expiry.warn_expiring(s, now))),
            ),
            (
                "escalation",
                lambda s: setattr(
                    report,
                    "escalated",
                    len(alerts_service.escalate_due(s, now, self.config.policy)),
                ),
            ),
            (
                "reminders",
                lambda s: setattr(
                    report, "reminded", len(alerts_service.remind_due(s, now, self.config.policy))
                ),
            ),
            ("rules reconciliation", lambda s: self._reconcile(s, now, report)),
            ("notifications", lambda s: self._deliver(s, now, report)),
        ]
        for name, job in jobs:
            with self.sessions() as session:
                session.info["actor"] = ACTOR
                try:
                    job(session)
                    session.commit()
                except Exception:
                    session.rollback()
                    log.exception("scheduler job %r failed at %s", name, now.isoformat())
        if self.audit is not None:
            try:
                report.sealed = self.seal()
                report.checkpointed = self.audit.checkpoint(now) is not None
            except Exception:
                log.exception("scheduler job 'audit checkpoint' failed at %s", now.isoformat())
        done = (report.raised, report.sequence_alerts, report.expired, report.escalated)
        if any((*done, report.delivered, report.failed)):
            log.info("scheduler tick %s: %s", now.isoformat(), report)
        return report

    def _sequences(self, session: Session, now: datetime, report: TickReport) -> None:
        grace = timedelta(seconds=self.config.sequence_grace_s)
        report.sequence_alerts = len(sequences.check_sequences(session, now, grace).raised)

    def _reconcile(self, session: Session, now: datetime, report: TickReport) -> None:
        """Once a day: every zone's excursions against a replay of its readings."""
        if now.date() <= self.reconciled_on or now.hour < self.config.reconcile_hour_utc:
            return
        self.reconciled_on = now.date()  # a failing night is logged, not retried every tick
        found = reconcile.reconcile(session, now=now)
        report.zones_reconciled = len(found)
        report.zones_differing = sum(not r.agrees for r in found)

    def _deliver(self, session: Session, now: datetime, report: TickReport) -> None:
        done = notify.deliver_due(session, now, self.senders, self.config.backoff)
        report.delivered, report.retrying, report.failed = (
            done.delivered,
            done.retrying,
            done.failed,
        )

    def seal(self) -> int:
        """Seal new audit entries into the keyed chain (nothing without the audit key)."""
        return self.audit.seal() if self.audit is not None else 0

    def run(self, stop: threading.Event) -> None:
        """Tick every interval, and seal the audit trail every few seconds, until `stop`."""
        log.info("scheduler running every %.0f s", self.config.interval_s)
        if self.audit is None:
            log.warning("no audit key: the audit trail is not sealed (see docs/audit.md)")
        every = self.config.interval_s
        if self.audit is not None:
            every = min(every, self.audit.keeping.seal_every_s)
        next_tick = time.monotonic()
        while not stop.is_set():
            if time.monotonic() >= next_tick:
                self.tick()
                next_tick = time.monotonic() + self.config.interval_s
            else:
                try:
                    self.seal()
                except Exception:
                    log.exception("sealing the audit trail failed")
            stop.wait(max(0.0, min(every, next_tick - time.monotonic())))
        log.info("scheduler stopped")
