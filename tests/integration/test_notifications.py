"""Notifications delivered for real: webhooks to an HTTP server on a local port (signed,
retried with backoff, every attempt recorded) and e-mail to a local SMTP server."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.quality import Hold
from cloud.adapters.outbound import WebhookPolicy
from cloud.domain.alerts import Backoff, EscalationPolicy, signature_valid
from cloud.entrypoints.scheduler import Scheduler, SchedulerConfig
from cloud.service_layer import alerts as alerts_service
from cloud.service_layer.notifications import (
    SmtpSettings,
    default_senders,
    deliver_due,
    notifications_of,
)
from cloud.service_layer.notifications import add_channel as add
from tests.integration.alerting_support import (
    World,
    at,
    seed_world,
    smtp_server,
    webhook_receiver,
)
from tests.integration.api_support import running_api

pytestmark = pytest.mark.integration
LOCAL = WebhookPolicy.parse("127.0.0.0/8")  # the receivers of these tests listen on loopback


def local_senders() -> dict:
    return default_senders(webhooks=LOCAL)


BACKOFF = Backoff(timedelta(seconds=30), 2.0, timedelta(minutes=10), max_attempts=4)


@pytest.fixture
def world(db: Session) -> World:
    world = seed_world(db)
    db.commit()
    return world


def test_webhook_is_signed_and_delivered(db: Session, world: World) -> None:
    with webhook_receiver() as hook:
        add(db, "ops-webhook", "webhook", hook.url, secret="whsec-test", webhooks=LOCAL)
        (alert,) = alerts_service.raise_alerts(db, [world.excursion], [], now=at(31))
        db.commit()
        report = deliver_due(db, at(31), local_senders(), BACKOFF)
        assert (report.delivered, report.retrying, report.failed) == (1, 0, 0)
        (request,) = hook.requests
    assert request.path == "/hooks/coldchain"
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["x-coldchain-event"] == "opened"
    assert headers["x-coldchain-timestamp"] == str(int(at(31).timestamp()))
    assert signature_valid(
        "whsec-test",
        headers["x-coldchain-timestamp"],
        request.body,
        headers["x-coldchain-signature"],
    )
    assert not signature_valid(
        "wrong", headers["x-coldchain-timestamp"], request.body, headers["x-coldchain-signature"]
    )
    body = json.loads(request.body)
    assert body["alert"]["id"] == alert.id and body["alert"]["severity"] == "critical"
    (note,) = notifications_of(db, alert.id)
    assert (note.state, note.attempts, note.last_status, note.delivered_at) == (
        "delivered",
        1,
        200,
        at(31),
    )
    assert headers["x-coldchain-delivery"] == str(note.id)


def test_webhook_retried_with_exponential_backoff(db: Session, world: World) -> None:
    with webhook_receiver() as hook:
        hook.fail_next = 2
        add(db, "ops-webhook", "webhook", hook.url, secret="whsec-test", webhooks=LOCAL)
        (alert,) = alerts_service.raise_alerts(db, [world.excursion], [], now=at(0))
        db.commit()
        (note,) = notifications_of(db, alert.id)
        first = deliver_due(db, at(0), local_senders(), BACKOFF)
        assert first.retrying == 1
        assert (note.attempts, note.last_status, note.state) == (1, 503, "pending")
        assert note.next_attempt_at == at(0) + timedelta(seconds=30)
        assert "HTTP 503" in (note.last_error or "")
        assert deliver_due(db, at(0.4), local_senders(), BACKOFF).retrying == 0  # not yet due
        assert len(hook.requests) == 1
        deliver_due(db, at(0.5), local_senders(), BACKOFF)
        assert note.attempts == 2 and note.next_attempt_at == at(0.5) + timedelta(seconds=60)
        final = deliver_due(db, at(1.5), local_senders(), BACKOFF)
        assert final.delivered == 1
        assert len(hook.requests) == 3
        # Every retry carries the same delivery id, so the receiver can drop repeats.
        assert len({r.headers["X-Coldchain-Delivery"] for r in hook.requests}) == 1
    assert (note.state, note.attempts, note.last_status) == ("delivered", 3, 200)


def test_a_receiver_that_never_answers_fails_for_good(db: Session, world: World) -> None:
    with webhook_receiver() as hook:
        dead_url = hook.url  # the server is gone after this block: connections are refused
    add(db, "gone", "webhook", dead_url, webhooks=LOCAL)
    (alert,) = alerts_service.raise_alerts(db, [world.excursion], [], now=at(0))
    db.commit()
    now = at(0)
    for _ in range(BACKOFF.max_attempts):
        deliver_due(db, now, local_senders(), BACKOFF)
        now += timedelta(hours=1)
    (note,) = notifications_of(db, alert.id)
    assert (note.state, note.attempts, note.next_attempt_at) == ("failed", 4, None)
    assert "ConnectionRefusedError" in (note.last_error or "") or "refused" in (
        note.last_error or ""
    )
    assert deliver_due(db, now, local_senders(), BACKOFF).failed == 0  # nothing left to try


def test_email_through_a_real_smtp_server(db: Session, world: World) -> None:
    with smtp_server() as mailbox:
        add(db, "qa-mail", "email", "qa-team@example.org")
        add(db, "supervisor", "email", "supervisor@example.org", level=1)
        (alert,) = alerts_service.raise_alerts(db, [], [world.hold], now=at(30))
        db.commit()
        smtp = SmtpSettings(host=mailbox.host, port=mailbox.port, sender="alerts@coldchain.test")
        senders = default_senders(smtp)
        assert deliver_due(db, at(30), senders, BACKOFF).delivered == 1
        assert [rcpt for _, rcpt, _ in mailbox.messages] == [["qa-team@example.org"]]
        sender, _, message = mailbox.messages[0]
        assert sender == "alerts@coldchain.test"
        assert message["Subject"] == "[CRITICAL] Batch L1 on hold: alarm-level excursion"
        assert f"Alert id: {alert.id}" in message.get_payload()
        # Not acknowledged within the first tier: the supervisor hears of it too.
        alerts_service.escalate_due(db, at(61))
        db.commit()
        assert deliver_due(db, at(61), senders, BACKOFF).delivered == 1
        assert mailbox.messages[-1][1] == ["supervisor@example.org"]
        assert mailbox.messages[-1][2]["X-Coldchain-Event"] == "escalated:1"


def test_smtp_server_down_is_retried(db: Session, world: World) -> None:
    with smtp_server() as mailbox:
        port = mailbox.port
    add(db, "qa-mail", "email", "qa-team@example.org")
    alerts_service.raise_alerts(db, [], [world.hold], now=at(30))
    db.commit()
    senders = default_senders(SmtpSettings(host="127.0.0.1", port=port))
    report = deliver_due(db, at(30), senders, BACKOFF)
    assert report.retrying == 1
    with smtp_server() as mailbox:
        senders = default_senders(SmtpSettings(host=mailbox.host, port=mailbox.port))
        assert deliver_due(db, at(31), senders, BACKOFF).delivered == 1
        assert len(mailbox.messages) == 1


def test_channel_validation(db: Session) -> None:
    with pytest.raises(ValueError, match="channel x: webhook target 'ftp://a' is not"):
        add(db, "x", "webhook", "ftp://a")
    with pytest.raises(ValueError, match="not an address"):
        add(db, "y", "email", "nobody")


def test_the_scheduler_escalates_reminds_and_delivers(pg_url: str, world: World) -> None:
    engine = make_engine(pg_url)
    sessions = session_factory(engine)
    with sessions() as db, webhook_receiver() as hook, smtp_server() as mailbox:
        db.info["actor"] = "test-setup"
        add(db, "duty", "webhook", hook.url, secret="k", min_severity="info", webhooks=LOCAL)
        add(db, "supervisor", "email", "supervisor@example.org", level=1)
        db.info["reason"] = "released: this test follows the excursion's alert alone"
        hold = db.get(Hold, world.hold.id)
        assert hold is not None
        hold.status = "released"
        db.commit()  # the scheduler's sweep raises the excursion's alert on its first tick
        clock = [at(0)]
        config = SchedulerConfig(
            policy=EscalationPolicy.parse("30", 60), backoff=BACKOFF, interval_s=0.01
        )
        smtp = SmtpSettings(host=mailbox.host, port=mailbox.port)
        scheduler = Scheduler(
            sessions, config, clock=lambda: clock[0], senders=default_senders(smtp, LOCAL)
        )
        first = scheduler.tick()
        assert (first.raised, first.delivered) == (1, 1)  # the opening, to the duty webhook
        clock[0] = at(30)
        tick = scheduler.tick()
        assert (tick.escalated, tick.delivered) == (1, 1)  # the supervisor, by e-mail
        assert [m[1] for m in mailbox.messages] == [["supervisor@example.org"]]
        clock[0] = at(60)
        tick = scheduler.tick()
        assert (tick.reminded, tick.delivered) == (1, 2)  # both tiers are reminded
        assert [r.headers["X-Coldchain-Event"] for r in hook.requests] == [
            "opened",
            "reminder:20260302T070000Z",
        ]
        stop = threading.Event()
        runner = threading.Thread(target=scheduler.run, args=(stop,))
        runner.start()
        stop.set()
        runner.join(timeout=10)
        assert not runner.is_alive()
    engine.dispose()


def test_channels_are_managed_through_the_api(pg_url: str) -> None:
    with running_api(pg_url) as api, webhook_receiver() as hook:
        c, admin = api.client, api.as_("admin")
        body = {
            "name": "ops",
            "kind": "webhook",
            "target": hook.url,
            "secret": "0123456789abcdef",
            "min_severity": "info",
        }
        inside = c.post("/api/notification-channels", json=body, headers=admin)
        assert inside.status_code == 422, inside.get_json()
        assert "127.0.0.1, a loopback address" in inside.get_json()["detail"]
        api.app.config["WEBHOOK_ALLOW"] = "127.0.0.1"  # as COLDCHAIN_WEBHOOK_ALLOW would
        made = c.post("/api/notification-channels", json=body, headers=admin)
        assert made.status_code == 201
        assert made.get_json()["signed"] is True and "secret" not in made.get_json()
        assert c.post("/api/notification-channels", json=body, headers=admin).status_code == 409
        bad = c.post(
            "/api/notification-channels",
            json={**body, "name": "x", "target": "ftp://nope"},
            headers=admin,
        )
        assert bad.status_code == 422 and "not an http(s) URL" in bad.get_json()["detail"]
        listed = c.get("/api/notification-channels", headers=admin).get_json()["items"]
        assert [(ch["name"], ch["active"]) for ch in listed] == [("ops", True)]
        ident = made.get_json()["id"]
        no_reason = c.delete(f"/api/notification-channels/{ident}", headers=admin)
        assert no_reason.status_code == 422  # an audited change needs a reason
        gone = c.delete(
            f"/api/notification-channels/{ident}",
            headers={**admin, "X-Reason": "receiver decommissioned"},
        )
        assert gone.status_code == 204
        listed = c.get("/api/notification-channels", headers=admin).get_json()["items"]
        assert [ch["active"] for ch in listed] == [False]
