"""What the cloud sends out, and where it may not: webhook targets inside the network are
refused (when added and again before each delivery), redirects are not followed, and SMTP
verifies the server's certificate before anything, a password included, is sent."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from sqlalchemy.orm import Session

from cloud.adapters.outbound import WebhookPolicy
from cloud.service_layer import alerts as alerts_service
from cloud.service_layer.notifications import (
    SmtpSettings,
    add_channel,
    default_senders,
    deliver_due,
    notifications_of,
)
from tests.integration.alerting_support import World, at, seed_world, smtp_server, webhook_receiver
from tests.integration.api_support import running_api
from tests.integration.test_notifications import BACKOFF

pytestmark = pytest.mark.integration
LOCAL = WebhookPolicy.parse("127.0.0.1")


@pytest.fixture
def world(db: Session) -> World:
    world = seed_world(db)
    db.commit()
    return world


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.5/hook", "private"),
        ("http://192.168.1.20/hook", "private"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[fd00:ec2::254]/hook", "private"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://100.64.0.1/hook", "non-public"),
    ],
)
def test_webhook_targets_inside_the_network_are_refused(
    db: Session, target: str, kind: str
) -> None:
    with pytest.raises(ValueError, match=f"a {kind} address"):
        add_channel(db, "inside", "webhook", target)
    db.rollback()


def test_allow_listed_and_public_targets_are_taken(db: Session) -> None:
    db.info["actor"] = "test-admin"
    add_channel(db, "public", "webhook", "https://93.184.216.34/hook")
    policy = WebhookPolicy.parse("10.20.0.0/16, tickets.internal")
    add_channel(db, "ticketing", "webhook", "http://10.20.3.4/api", webhooks=policy)
    with pytest.raises(ValueError, match="credentials in the URL"):
        add_channel(db, "creds", "webhook", "https://user:pw@93.184.216.34/hook")
    with pytest.raises(ValueError, match="not a host name or network"):
        WebhookPolicy.parse("10.0.0.0/8, not a host!")
    db.rollback()


def test_a_redirect_is_not_followed(db: Session, world: World) -> None:
    with webhook_receiver() as hook, webhook_receiver() as inside:
        hook.redirect_to = inside.url
        add_channel(db, "ops", "webhook", hook.url, webhooks=LOCAL)
        (alert,) = alerts_service.raise_alerts(db, [world.excursion], [], now=at(31))
        db.commit()
        report = deliver_due(db, at(31), default_senders(webhooks=LOCAL), BACKOFF)
        assert (report.delivered, report.retrying) == (0, 1)
        assert len(hook.requests) == 1 and inside.requests == []
    (note,) = notifications_of(db, alert.id)
    assert note.last_status == 302
    assert "redirects are not followed" in (note.last_error or "")


def test_a_target_is_checked_again_before_each_delivery(db: Session, world: World) -> None:
    """Added while allow-listed (or resolving elsewhere then): refused when sent now."""
    with webhook_receiver() as hook:
        add_channel(db, "ops", "webhook", hook.url, webhooks=LOCAL)
        (alert,) = alerts_service.raise_alerts(db, [world.excursion], [], now=at(31))
        db.commit()
        report = deliver_due(db, at(31), default_senders(), BACKOFF)  # the strict policy
        assert report.delivered == 0 and hook.requests == []
    (note,) = notifications_of(db, alert.id)
    assert "not sent" in (note.last_error or "") and "loopback" in (note.last_error or "")


def server_context(ca: trustme.CA, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def deliver_mail(db: Session, world: World, smtp: SmtpSettings) -> tuple[int, str | None]:
    add_channel(db, "qa-mail", "email", "qa-team@example.org")
    (alert,) = alerts_service.raise_alerts(db, [world.excursion], [], now=at(31))
    db.commit()
    report = deliver_due(db, at(31), default_senders(smtp), BACKOFF)
    (note,) = notifications_of(db, alert.id)
    return report.delivered, note.last_error


def test_smtp_starttls_with_a_certificate_we_trust_delivers(
    db: Session, world: World, tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with smtp_server(server_context(ca, "127.0.0.1")) as mailbox:
        smtp = SmtpSettings(mailbox.host, mailbox.port, starttls=True, ca_file=str(ca_file))
        delivered, error = deliver_mail(db, world, smtp)
        assert (delivered, error) == (1, None)
        assert len(mailbox.messages) == 1


@pytest.mark.parametrize("trusted", [False, True], ids=["unknown-ca", "wrong-name"])
def test_smtp_starttls_refuses_a_certificate_it_cannot_verify(
    db: Session, world: World, tmp_path: Path, trusted: bool
) -> None:
    """It used to take any certificate (CERT_NONE) and then log in."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    (ca if trusted else trustme.CA()).cert_pem.write_to_path(str(ca_file))
    name = "mail.elsewhere.example" if trusted else "127.0.0.1"
    with smtp_server(server_context(ca, name)) as mailbox:
        smtp = SmtpSettings(
            mailbox.host,
            mailbox.port,
            starttls=True,
            username="alerts",
            password="s3cret-smtp-password",
            ca_file=str(ca_file),
        )
        delivered, error = deliver_mail(db, world, smtp)
        assert delivered == 0 and mailbox.messages == []
        assert "CERTIFICATE_VERIFY_FAILED" in (error or "") or "certificate" in (error or "")


def test_smtp_login_without_starttls_is_refused() -> None:
    with pytest.raises(ValueError, match="password in clear"):
        SmtpSettings("mail.example.org", 25, username="alerts", password="pw")


def test_only_admins_read_what_a_receiver_answered(pg_url: str) -> None:
    """A delivery's error can carry a receiver's answer: viewers no longer see it."""
    with running_api(pg_url) as api:
        api.app.config["WEBHOOK_ALLOW"] = "127.0.0.1"
        body = {"name": "ops", "kind": "webhook", "target": "http://127.0.0.1:9/hook"}
        made = api.client.post("/api/notification-channels", json=body, headers=api.as_("admin"))
        assert made.status_code == 201, made.get_json()
        api.db.info["actor"] = "system:test"
        alert = alerts_service.raise_alert(
            api.db,
            kind="gateway_offline",
            severity="critical",
            title="Gateway wh-a-gw offline",
            subject_kind="gateway",
            subject_id="wh-a-gw",
            now=at(0),
        )
        api.db.commit()
        assert alert is not None
        deliver_due(api.db, at(0), default_senders(webhooks=LOCAL), BACKOFF)
        seen = {
            role: api.client.get(f"/api/alerts/{alert.id}", headers=api.as_(role)).get_json()
            for role in ("viewer", "operator", "qa", "admin")
        }
        errors = {role: [n["last_error"] for n in a["notifications"]] for role, a in seen.items()}
        assert errors["viewer"] == errors["operator"] == errors["qa"] == [None]
        assert "ConnectError" in (errors["admin"][0] or ""), errors
