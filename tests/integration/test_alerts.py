"""Alerts on PostgreSQL: raised once per excursion and hold, lifecycle, escalation tiers,
reminders, comments and assignment, on a clock the test moves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.alerting import Alert, Notification
from cloud.adapters.outbound import WebhookPolicy
from cloud.domain.alerts import EscalationPolicy
from cloud.domain.lifecycle import IllegalTransition
from cloud.entrypoints.scheduler import Scheduler, SchedulerConfig
from cloud.service_layer import alerts as alerts_service
from cloud.service_layer.expiry import block_expired
from cloud.service_layer.notifications import add_channel, default_senders
from tests.integration.alerting_support import World, at, closed_alarm, seed_world, webhook_receiver
from tests.integration.api_support import running_api

pytestmark = pytest.mark.integration
LOCAL = WebhookPolicy.parse("127.0.0.0/8")  # the test receivers listen on loopback
POLICY = EscalationPolicy((timedelta(minutes=30), timedelta(hours=2)), timedelta(hours=1))


@pytest.fixture
def world(db: Session) -> World:
    world = seed_world(db)
    db.commit()
    return world


def test_one_alert_per_excursion_and_hold_however_often_raised(db: Session, world: World) -> None:
    raised = alerts_service.raise_alerts(db, [world.excursion], [world.hold], now=at(31))
    db.commit()
    assert [(a.subject_kind, a.kind, a.severity) for a in raised] == [
        ("excursion", "excursion_high", "critical"),
        ("hold", "hold", "critical"),
    ]
    assert raised[0].site_id == "wh-a"
    assert "peak 12.5, limit 8" in raised[0].title
    assert "Batch L1 on hold" in raised[1].title
    again = alerts_service.raise_alerts(db, [world.excursion], [world.hold], now=at(40))
    db.commit()
    assert again == []
    assert db.scalar(select(func.count()).select_from(Alert)) == 2


def test_a_suppressed_excursion_raises_no_alert(db: Session, world: World) -> None:
    world.excursion.suppressed_reason = "receiving: door open within grace"
    db.info["reason"] = "test"
    assert alerts_service.raise_alerts(db, [world.excursion], []) == []


def test_lifecycle_comments_and_assignment(db: Session, world: World) -> None:
    (alert,) = alerts_service.raise_alerts(db, [world.excursion], [], now=at(31))
    alerts_service.assign(db, alert.id, world.qa)
    alerts_service.comment(db, alert.id, world.operator, "door left open by a forklift", at(33))
    alerts_service.acknowledge(db, alert.id, world.operator, at(35))
    with pytest.raises(IllegalTransition, match=f"alert {alert.id} is acknowledged"):
        alerts_service.acknowledge(db, alert.id, world.qa, at(36))
    alerts_service.resolve(db, alert.id, world.qa, at(90))
    db.commit()
    db.expire_all()
    stored = db.get(Alert, alert.id)
    assert stored is not None
    assert (stored.state, stored.assignee) == ("resolved", world.qa.id)
    assert (stored.acknowledged_at, stored.acknowledged_by) == (at(35), world.operator.id)
    assert (stored.resolved_at, stored.resolved_by) == (at(90), world.qa.id)
    assert [c.text for c in alerts_service.comments(db, alert.id)] == [
        "door left open by a forklift"
    ]
    with pytest.raises(ValueError, match="resolved: it cannot be assigned"):
        alerts_service.assign(db, alert.id, world.operator)
    with pytest.raises(ValueError, match="needs text"):
        alerts_service.comment(db, alert.id, world.qa, "  ")
    with pytest.raises(alerts_service.UnknownAlert, match="alert 999 does not exist"):
        alerts_service.acknowledge(db, 999, world.qa)
    assert alerts_service.open_alerts(db) == []


def test_escalation_tiers_and_reminders_on_a_moving_clock(db: Session, world: World) -> None:
    add_channel(
        db, "duty-phone", "webhook", "http://127.0.0.1:9/duty", min_severity="info", webhooks=LOCAL
    )
    add_channel(db, "supervisor", "email", "supervisor@example.org", level=1)
    add_channel(db, "head-of-qa", "email", "head.qa@example.org", level=2)
    (alert,) = alerts_service.raise_alerts(db, [world.excursion], [], now=at(0))
    db.commit()

    def events() -> list[tuple[str, int]]:
        rows = db.scalars(select(Notification).order_by(Notification.id))
        return [(n.event, n.channel_id) for n in rows]

    assert events() == [("opened", 1)]
    assert alerts_service.escalate_due(db, at(29), POLICY) == []
    assert [a.id for a in alerts_service.escalate_due(db, at(30), POLICY)] == [alert.id]
    assert alert.escalation_level == 1 and alert.escalated_at == at(30)
    assert events()[-1] == ("escalated:1", 2)
    assert alerts_service.escalate_due(db, at(31), POLICY) == []  # level 1 only once
    assert alerts_service.remind_due(db, at(59), POLICY) == []
    assert [a.id for a in alerts_service.remind_due(db, at(60), POLICY)] == [alert.id]
    # A reminder goes to every channel up to the level reached: duty phone and supervisor.
    assert events()[-2:] == [("reminder:20260302T070000Z", 1), ("reminder:20260302T070000Z", 2)]
    alerts_service.acknowledge(db, alert.id, world.operator, at(100))
    assert alerts_service.escalate_due(db, at(500), POLICY) == []
    assert alerts_service.remind_due(db, at(500), POLICY) == []
    db.commit()
    assert len(events()) == 4


def test_open_alerts_most_severe_first(db: Session, world: World) -> None:
    alerts_service.raise_alert(
        db,
        kind="expiry_60",
        severity="info",
        title="L1 expires in 60 days",
        subject_kind="expiry",
        subject_id="1",
        now=at(0),
    )
    alerts_service.raise_alerts(db, [world.excursion], [], now=at(5))
    db.commit()
    assert [a.severity for a in alerts_service.open_alerts(db)] == ["critical", "info"]


def test_alerts_through_the_api(pg_url: str) -> None:
    with running_api(pg_url) as api:
        db = api.db
        db.info["actor"] = "test-setup"
        excursion = closed_alarm()
        db.add(excursion)
        db.flush()
        (alert,) = alerts_service.raise_alerts(db, [excursion], [], now=at(31))
        db.commit()
        c, url = api.client, f"/api/alerts/{alert.id}"
        listed = c.get("/api/alerts?state=unresolved", headers=api.as_("viewer")).get_json()
        assert [a["id"] for a in listed["items"]] == [alert.id]
        assert listed["items"][0]["site_id"] == "wh-a"
        bad = c.get("/api/alerts?state=forgotten", headers=api.as_("viewer"))
        assert bad.status_code == 400
        commented = c.post(
            f"{url}/comments", json={"text": "checking the door"}, headers=api.as_("operator")
        )
        assert commented.status_code == 201
        assigned = c.post(f"{url}/assign", json={"username": "qa"}, headers=api.as_("qa"))
        assert assigned.get_json()["assignee"] == "qa"
        nobody = c.post(f"{url}/assign", json={"username": "ghost"}, headers=api.as_("qa"))
        assert nobody.status_code == 404
        acked = c.post(f"{url}/acknowledge", headers=api.as_("operator")).get_json()
        assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", "operator")
        twice = c.post(f"{url}/acknowledge", headers=api.as_("operator"))
        assert twice.status_code == 409
        assert twice.get_json()["type"] == "urn:coldchain:problem:illegal-transition"
        resolved = c.post(f"{url}/resolve", json={}, headers=api.as_("qa")).get_json()
        assert resolved["state"] == "resolved"
        assert [x["text"] for x in resolved["comments"]] == ["checking the door"]
        late = c.post(f"{url}/assign", json={"username": "qa"}, headers=api.as_("qa"))
        assert late.status_code == 409
        report = c.get(f"/api/excursions/{excursion.id}/report.pdf", headers=api.as_("viewer"))
        assert report.status_code == 200 and report.mimetype == "application/pdf"
        assert report.data.startswith(b"%PDF-")
        missing = c.get("/api/excursions/404/report.pdf", headers=api.as_("viewer"))
        assert missing.status_code == 404
        assert c.get("/api/alerts/404", headers=api.as_("viewer")).status_code == 404


def test_the_sweep_announces_what_nobody_raised(db: Session, world: World) -> None:
    swept = alerts_service.raise_pending(db, at(40))
    assert sorted((a.subject_kind, a.subject_id) for a in swept) == [
        ("excursion", str(world.excursion.id)),
        ("hold", str(world.hold.id)),
    ]
    assert alerts_service.raise_pending(db, at(41)) == []
    db.info["reason"] = "released"
    world.hold.status = "released"
    db.flush()
    assert alerts_service.raise_pending(db, at(42)) == []


def test_the_embedded_default_sqlite_runs_the_same(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    sessions = session_factory(engine)
    with sessions() as db, webhook_receiver() as hook:
        world = seed_world(db)
        add_channel(db, "duty", "webhook", hook.url, secret="k", webhooks=LOCAL)
        db.commit()
        clock = [at(0)]
        scheduler = Scheduler(
            sessions,
            SchedulerConfig(policy=POLICY),
            clock=lambda: clock[0],
            senders=default_senders(webhooks=LOCAL),
        )
        assert (scheduler.tick().raised, len(hook.requests)) == (2, 2)
        assert alerts_service.raise_alerts(db, [world.excursion], [world.hold]) == []
        clock[0] = at(30)
        assert scheduler.tick().escalated == 2
        db.info["reason"] = "expiry test"
        world.batch.expires_on = at(0).date()
        db.commit()
        assert block_expired(db, at(60 * 24)) == [world.batch]
        db.commit()
    engine.dispose()


def test_subjects_created_in_the_transaction_raise_without_a_look_up(
    db: Session, world: World
) -> None:
    """The ingest path: excursions and holds the rules just opened are known to be new."""
    (alert, held) = alerts_service.raise_alerts(
        db, [world.excursion], [world.hold], now=at(31), fresh=[world.excursion, world.hold]
    )
    db.commit()
    assert (alert.subject_id, held.subject_id) == (str(world.excursion.id), str(world.hold.id))
    assert alert.site_id == "wh-a"
    # Raised again the usual way (the scheduler's sweep), nothing is added.
    assert alerts_service.raise_alerts(db, [world.excursion], [world.hold], now=at(40)) == []
    assert db.scalar(select(func.count()).select_from(Alert)) == 2
