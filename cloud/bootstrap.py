"""Wiring: one function per process, building what its entry point runs on.

Entry points (the CLI commands, the API app, the control room, the demo) call one of these and
never build engines, stores or senders of their own, so a process is configured in one place.
Each returns plain objects of the service layer and views; the entry point owns the loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.adapters.broker import port_is_free
from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.migrate import upgrade
from cloud.adapters.outbound import WebhookPolicy
from cloud.service_layer.notifications import Sender, SmtpSettings, default_senders
from cloud.service_layer.store import Store
from cloud.views.control_room import ControlRoom

__all__ = [
    "Database",
    "IngestWiring",
    "SchedulerWiring",
    "api",
    "control_room",
    "database",
    "ingest",
    "port_is_free",
    "scheduler",
]


@dataclass(frozen=True)
class Database:
    """An engine and the sessions opened on it."""

    engine: Engine
    sessions: sessionmaker[Session]


def database(url: str, *, ping: bool = True, migrate: bool = False) -> Database:
    """The database at `url` (migrated to head first when `migrate`)."""
    if migrate:
        upgrade(url)
    engine = make_engine(url, ping=ping)
    return Database(engine, session_factory(engine))


@dataclass(frozen=True)
class IngestWiring:
    """What an ingest worker writes through, and where its rules run."""

    store: Store
    rules_process: bool


def ingest(url: str, *, migrate: bool = True, rules_in: str = "auto") -> IngestWiring:
    """The ingest worker's store; rules in a process of their own on PostgreSQL by default.

    No ping: a dropped connection makes the writer write again at once and the rules evaluate
    again (decision 0017), which saves a round trip on every batch."""
    db = database(url, ping=False, migrate=migrate)
    if rules_in == "auto":
        rules_in = "process" if db.engine.dialect.name == "postgresql" else "thread"
    if rules_in not in ("thread", "process"):
        raise ValueError(f"rules_in must be auto, thread or process, not {rules_in!r}")
    return IngestWiring(Store(db.engine), rules_process=rules_in == "process")


def api(url: str) -> sessionmaker[Session]:
    """The REST API's sessions, one per request."""
    return database(url).sessions


@dataclass(frozen=True)
class SchedulerWiring:
    """The scheduler's database and its notification senders by channel kind."""

    db: Database
    senders: dict[str, Sender]


def scheduler(
    url: str, smtp: SmtpSettings | None = None, webhooks: WebhookPolicy | None = None
) -> SchedulerWiring:
    """The scheduler's sessions and senders (webhooks within `webhooks`, and e-mail through
    `smtp`)."""
    return SchedulerWiring(database(url), default_senders(smtp, webhooks))


def control_room(url: str) -> ControlRoom:
    """The control room's read models over the database at `url`."""
    return ControlRoom(database(url).sessions)
