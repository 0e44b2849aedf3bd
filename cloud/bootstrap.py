"""Wiring: one function per process, building what its entry point runs on.

Entry points (the CLI commands, the API app, the control room, the demo) call one of these and
never build engines, stores or senders of their own, so a process is configured in one place.
Each returns plain objects of the service layer and views; the entry point owns the loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.adapters.broker import port_is_free
from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.migrate import upgrade
from cloud.adapters.outbound import WebhookPolicy
from cloud.domain.audit_chain import AuditKey, AuditKeyError
from cloud.service_layer.audit_keeping import AuditKeeper, AuditKeeping
from cloud.service_layer.notifications import Sender, SmtpSettings, default_senders
from cloud.service_layer.store import Store
from cloud.views.control_room import ControlRoom

__all__ = [
    "AuditKeeping",
    "Database",
    "IngestWiring",
    "SchedulerWiring",
    "api",
    "audit_key",
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


KEY_FILE_ENV, KEY_ENV = "COLDCHAIN_AUDIT_KEY_FILE", "COLDCHAIN_AUDIT_KEY"


def audit_key(key_file: str | Path | None = None) -> AuditKey | None:
    """The audit trail's key: from `key_file`, else the file named by COLDCHAIN_AUDIT_KEY_FILE,
    else COLDCHAIN_AUDIT_KEY itself; None if none is given. AuditKeyError if unusable."""
    path = key_file or os.environ.get(KEY_FILE_ENV)
    if path:
        try:
            secret = Path(path).read_bytes().strip()
        except OSError as exc:
            raise AuditKeyError(f"cannot read the audit key file {path}: {exc}") from exc
        return AuditKey(secret)
    text = os.environ.get(KEY_ENV, "").strip()
    return AuditKey(text.encode()) if text else None


@dataclass(frozen=True)
class SchedulerWiring:
    """The scheduler's database, its notification senders by channel kind, and its keeper of
    the audit trail (None without the audit key)."""

    db: Database
    senders: dict[str, Sender]
    audit: AuditKeeper | None = None


def scheduler(
    url: str,
    smtp: SmtpSettings | None = None,
    audit: AuditKeeping | None = None,
    webhooks: WebhookPolicy | None = None,
) -> SchedulerWiring:
    """The scheduler's sessions and senders (webhooks within `webhooks`, and e-mail through
    `smtp`), and the audit trail's keeper (seals and checkpoints) when given its key."""
    db = database(url)
    keeper = AuditKeeper(db.engine, audit) if audit is not None else None
    return SchedulerWiring(db, default_senders(smtp, webhooks), keeper)


def control_room(url: str) -> ControlRoom:
    """The control room's read models over the database at `url` (and the audit key, if the
    environment gives one, to verify the trail's seals)."""
    return ControlRoom(database(url).sessions, audit_key=audit_key())
