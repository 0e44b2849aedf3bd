"""What the alerting tests share: a seeded world with an excursion and a hold, a real HTTP
receiver for webhooks and a real SMTP server (aiosmtpd). No tests here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session

from cloud.adapters.broker import free_port
from cloud.adapters.orm.people import User
from cloud.adapters.orm.quality import Excursion, Hold
from cloud.adapters.orm.readings import Gateway, Sensor, Site, Zone
from cloud.adapters.orm.traceability import Batch, Product
from cloud.service_layer.signatures import create_user

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
GTIN = "09506000134352"
PASSWORD = "correct horse battery"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class World:
    qa: User
    operator: User
    batch: Batch
    excursion: Excursion
    hold: Hold


def closed_alarm() -> Excursion:
    """An alarm-level high excursion in a-cold, 45 minutes at up to 12.5 C, now closed."""
    return Excursion(
        zone_id="a-cold",
        profile_id="2-8C",
        rule="alarm high",
        kind="high",
        level="alarm",
        started_at=at(0),
        ended_at=at(45),
        peak=12.5,
        limit=8.0,
        state="closed",
        detected_at=at(30),
    )


def seed_world(db: Session) -> World:
    """Sites, a cold room with a sensor, a product and a batch, users, an excursion, a hold."""
    db.info["actor"] = "test-setup"
    db.add_all(
        [
            Site(id="wh-a", name="Warehouse A", kind="warehouse", timezone="Europe/Berlin"),
            Product(gtin=GTIN, name="mRNA vaccine vial", low=2, high=8, freeze_sensitive=True),
        ]
    )
    db.flush()
    db.add_all(
        [
            Zone(id="a-cold", site_id="wh-a", name="Cold room A", kind="cold_room", low=2, high=8),
            Gateway(id="wh-a-gw", site_id="wh-a"),
        ]
    )
    db.flush()
    db.add(Sensor(id="a-cold-t1", zone_id="a-cold", gateway_id="wh-a-gw", model="sim"))
    batch = Batch(gtin=GTIN, lot="L1", expires_on=date(2027, 6, 30), quantity=100)
    db.add(batch)
    qa = create_user(db, "qa", "Quinn Assurance", "qa", PASSWORD)
    operator = create_user(db, "op", "Olive Operator", "operator", PASSWORD)
    db.flush()
    excursion = closed_alarm()
    db.add(excursion)
    db.flush()
    hold = Hold(
        batch_id=batch.id,
        reason="alarm-level excursion",
        excursion_id=excursion.id,
        opened_at=at(30),
        status="open",
    )
    db.add(hold)
    db.flush()
    return World(qa, operator, batch, excursion, hold)


# --- a webhook receiver -------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with 503 before accepting
    redirect_to: str | None = None  # answer 302 to this Location


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def do_POST(self) -> None:  # noqa: N802  (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
        status = 200
        if self.receiver.fail_next > 0:
            self.receiver.fail_next -= 1
            status = 503
        elif self.receiver.redirect_to is not None:
            status = 302
        self.send_response(status)
        if status == 302:
            self.send_header("Location", str(self.receiver.redirect_to))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """A real HTTP server on a free local port, recording every POST."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
    receiver = Receiver(f"http://127.0.0.1:{server.server_port}/hooks/coldchain")
    server.RequestHandlerClass = type("Handler", (_Handler,), {"receiver": receiver})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- an SMTP server -----------------------------------------------------------------------


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(tls_context: Any = None) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a free local port, keeping every message; with a TLS
    context it offers STARTTLS."""
    port = free_port()
    mailbox = Mailbox("127.0.0.1", port)
    tls = {"tls_context": tls_context} if tls_context is not None else {}
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **tls)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
