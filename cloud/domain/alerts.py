"""Alerts: their lifecycle (open -> acknowledged -> resolved), severity, escalation tiers,
reminders and the backoff of notification retries. Pure values and a `now` passed in."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from cloud.domain.lifecycle import IllegalTransition


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
# step -> (states it may be taken from, state it leads to)
ALERT_STEPS = {
    "acknowledge": (frozenset({AlertState.OPEN}), AlertState.ACKNOWLEDGED),
    "resolve": (frozenset({AlertState.OPEN, AlertState.ACKNOWLEDGED}), AlertState.RESOLVED),
}


def at_least(severity: str, floor: str) -> bool:
    """True if `severity` is `floor` or worse."""
    return SEVERITY_RANK[Severity(severity)] >= SEVERITY_RANK[Severity(floor)]


def excursion_severity(kind: str, level: str) -> Severity:
    """An alarm-level excursion, or any freezing, is critical; a warning level is a warning."""
    if level == "alarm" or kind == "freezing":
        return Severity.CRITICAL
    return Severity.WARNING


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertFacts:
    """What escalation and reminders need to know about one alert."""

    id: int
    state: str
    opened_at: datetime
    escalation_level: int = 0
    last_reminded_at: datetime | None = None


def step(alert: AlertFacts, name: str) -> AlertFacts:
    """The alert after `name` (acknowledge, resolve); illegal steps raise IllegalTransition."""
    allowed, target = ALERT_STEPS[name]
    if alert.state not in allowed:
        raise IllegalTransition("alert", str(alert.id), alert.state, name, allowed)
    return replace(alert, state=target)


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """Escalate an unacknowledged alert to level n once tiers[n-1] has passed since it opened;
    remind (at the level it has reached) every `remind_every` while it stays unacknowledged."""

    tiers: tuple[timedelta, ...] = (timedelta(minutes=30), timedelta(hours=2))
    remind_every: timedelta | None = timedelta(hours=1)

    def __post_init__(self) -> None:
        if any(t <= timedelta(0) for t in self.tiers):
            raise ValueError("escalation tiers must be positive durations")
        if list(self.tiers) != sorted(set(self.tiers)):
            raise ValueError(
                f"escalation tiers must increase: got {', '.join(map(str, self.tiers))}"
            )
        if self.remind_every is not None and self.remind_every <= timedelta(0):
            raise ValueError(f"remind_every must be positive, got {self.remind_every}")

    @classmethod
    def parse(cls, tiers: str, remind_every_minutes: float | None) -> EscalationPolicy:
        """From "30,120" (minutes after opening) and a reminder interval in minutes (or None)."""
        try:
            minutes = [float(part) for part in tiers.split(",") if part.strip()]
        except ValueError as exc:
            raise ValueError(f"escalation tiers {tiers!r}: expected minutes like 30,120") from exc
        remind = None if not remind_every_minutes else timedelta(minutes=remind_every_minutes)
        return cls(tuple(timedelta(minutes=m) for m in minutes), remind)


def due_level(alert: AlertFacts, policy: EscalationPolicy, now: datetime) -> int:
    """How many tiers have passed for the alert by `now` (only while unacknowledged)."""
    if alert.state != AlertState.OPEN:
        return alert.escalation_level
    elapsed = now - alert.opened_at
    return max(alert.escalation_level, sum(1 for t in policy.tiers if elapsed >= t))


def escalation(alert: AlertFacts, policy: EscalationPolicy, now: datetime) -> int | None:
    """The level to escalate to now, or None when nothing is due."""
    level = due_level(alert, policy, now)
    return level if level > alert.escalation_level else None


def reminder_due(alert: AlertFacts, policy: EscalationPolicy, now: datetime) -> bool:
    """True when an unacknowledged alert has gone `remind_every` without a reminder."""
    if alert.state != AlertState.OPEN or policy.remind_every is None:
        return False
    return now - (alert.last_reminded_at or alert.opened_at) >= policy.remind_every


# --- notification delivery ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: base * factor**(attempt-1), capped; give up after max_attempts."""

    base: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 8

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1-based)."""
        if attempts < 1:
            raise ValueError(f"attempts counts from 1, got {attempts}")
        return min(self.cap, self.base * self.factor ** (attempts - 1))

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` failures, or None to give up."""
        return None if attempts >= self.max_attempts else now + self.delay(attempts)


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", as sent in X-Coldchain-Signature."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_valid(secret: str, timestamp: str, body: bytes, given: str) -> bool:
    """True if `given` is the signature of the body (a receiver's check, constant time)."""
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), given)


def recipients(
    channels: Sequence[tuple[int, str, int]], severity: str, level: int, *, exact: bool
) -> list[int]:
    """Channel ids (id, min_severity, from_level) that hear of an alert at `level`: those
    whose tier is exactly `level` (an escalation) or at most `level` (a reminder)."""
    return [
        ident
        for ident, floor, tier in channels
        if at_least(severity, floor) and (tier == level if exact else tier <= level)
    ]
