"""Alert lifecycle, escalation tiers, reminders, retry backoff and webhook signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.domain.alerts import (
    AlertFacts,
    Backoff,
    EscalationPolicy,
    Severity,
    at_least,
    escalation,
    excursion_severity,
    recipients,
    reminder_due,
    signature_valid,
    step,
    webhook_signature,
)
from cloud.domain.lifecycle import IllegalTransition

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
POLICY = EscalationPolicy((timedelta(minutes=30), timedelta(hours=2)), timedelta(hours=1))


def alert(**changes: object) -> AlertFacts:
    values: dict = {"id": 1, "state": "open", "opened_at": T0, **changes}
    return AlertFacts(**values)


def later(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_lifecycle_open_acknowledged_resolved() -> None:
    acked = step(alert(), "acknowledge")
    assert acked.state == "acknowledged"
    assert step(acked, "resolve").state == "resolved"
    assert step(alert(), "resolve").state == "resolved"  # resolving without an ack is allowed


@pytest.mark.parametrize(
    ("state", "name"),
    [("acknowledged", "acknowledge"), ("resolved", "resolve"), ("resolved", "acknowledge")],
)
def test_illegal_steps_name_the_state(state: str, name: str) -> None:
    with pytest.raises(IllegalTransition, match=f"alert 1 is {state}: cannot {name}"):
        step(alert(state=state), name)


def test_escalates_one_tier_at_a_time_while_unacknowledged() -> None:
    assert escalation(alert(), POLICY, later(29)) is None
    assert escalation(alert(), POLICY, later(30)) == 1
    assert escalation(alert(escalation_level=1), POLICY, later(119)) is None
    assert escalation(alert(escalation_level=1), POLICY, later(120)) == 2
    assert escalation(alert(escalation_level=2), POLICY, later(10_000)) is None
    # A scheduler that was down for three hours jumps straight to the level now due.
    assert escalation(alert(), POLICY, later(180)) == 2
    assert escalation(alert(state="acknowledged"), POLICY, later(180)) is None


def test_reminders_while_unacknowledged_only() -> None:
    assert not reminder_due(alert(), POLICY, later(59))
    assert reminder_due(alert(), POLICY, later(60))
    assert not reminder_due(alert(last_reminded_at=later(60)), POLICY, later(119))
    assert reminder_due(alert(last_reminded_at=later(60)), POLICY, later(120))
    assert not reminder_due(alert(state="acknowledged"), POLICY, later(600))
    assert not reminder_due(alert(), EscalationPolicy(remind_every=None), later(600))


def test_policy_parse_and_validation() -> None:
    parsed = EscalationPolicy.parse("15, 45", 20)
    assert parsed.tiers == (timedelta(minutes=15), timedelta(minutes=45))
    assert parsed.remind_every == timedelta(minutes=20)
    assert EscalationPolicy.parse("15", None).remind_every is None
    with pytest.raises(ValueError, match="must increase"):
        EscalationPolicy.parse("45,15", None)
    with pytest.raises(ValueError, match="expected minutes"):
        EscalationPolicy.parse("soon", None)
    with pytest.raises(ValueError, match="positive"):
        EscalationPolicy.parse("0,10", None)


def test_severity() -> None:
    assert excursion_severity("high", "alarm") == Severity.CRITICAL
    assert excursion_severity("freezing", "warning") == Severity.CRITICAL
    assert excursion_severity("high", "warning") == Severity.WARNING
    assert at_least("critical", "warning") and not at_least("info", "warning")


def test_recipients_by_tier_and_severity() -> None:
    channels = [(1, "info", 0), (2, "critical", 0), (3, "warning", 1), (4, "info", 2)]
    assert recipients(channels, "warning", 0, exact=True) == [1]
    assert recipients(channels, "critical", 0, exact=True) == [1, 2]
    assert recipients(channels, "critical", 1, exact=True) == [3]
    assert recipients(channels, "warning", 1, exact=False) == [1, 3]


def test_backoff_grows_exponentially_up_to_a_cap_then_gives_up() -> None:
    backoff = Backoff(timedelta(seconds=10), 2.0, timedelta(seconds=60), max_attempts=5)
    assert [backoff.delay(n).total_seconds() for n in range(1, 6)] == [10, 20, 40, 60, 60]
    assert backoff.next_attempt(1, T0) == T0 + timedelta(seconds=10)
    assert backoff.next_attempt(5, T0) is None
    with pytest.raises(ValueError, match="from 1"):
        backoff.delay(0)


def test_webhook_signature_covers_timestamp_and_body() -> None:
    sig = webhook_signature("s3cret", "1700000000", b'{"a":1}')
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert signature_valid("s3cret", "1700000000", b'{"a":1}', sig)
    assert not signature_valid("s3cret", "1700000001", b'{"a":1}', sig)
    assert not signature_valid("s3cret", "1700000000", b'{"a":2}', sig)
    assert not signature_valid("other", "1700000000", b'{"a":1}', sig)
