"""The audit trail's keyed chain over the database: seal the entries not sealed yet, verify
the whole trail in one snapshot, and keep signed checkpoints of its head outside it.

The seals are computed here, by a process that holds the key (the scheduler every few
seconds, `verify-audit`), never by the database (cloud.domain.audit_chain).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from cloud.adapters.orm.audit import AuditChainHead, AuditEntry, AuditSeal, chain_entry
from cloud.domain.audit_chain import (
    GENESIS,
    AuditKey,
    AuditKeyError,
    ChainReport,
    Checkpoint,
    Seal,
    link,
    parse_checkpoint,
    verify_chain,
)
from cloud.domain.clock import utcnow

log = logging.getLogger(__name__)

SEALER_LOCK = 7_263_011  # PostgreSQL advisory lock: one sealer at a time
GRACE = timedelta(minutes=10)  # an entry not sealed after this long is reported


def seal_pending(engine: Engine, key: AuditKey, *, limit: int = 10_000) -> int:
    """Seal the entries after the last seal, in id order; returns how many were sealed.

    Refuses (AuditKeyError) to extend a chain sealed with another key. Stops before a gap in
    the ids, which `verify_trail` reports."""
    entries, seals = AuditEntry.__table__, AuditSeal.__table__
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(SEALER_LOCK)))
            last = conn.execute(
                select(seals.c.entry_id, seals.c.mac, seals.c.key_id)
                .order_by(seals.c.entry_id.desc())
                .limit(1)
            ).first()
            if last is not None and last.key_id != key.key_id:
                raise AuditKeyError(
                    f"the audit trail is sealed with key {last.key_id}, this process has key "
                    f"{key.key_id}: give it the trail's key"
                )
            after, prev = (last.entry_id, last.mac) if last is not None else (0, GENESIS)
            rows = conn.execute(
                select(entries).where(entries.c.id > after).order_by(entries.c.id).limit(limit)
            ).mappings()
            at, sealed = utcnow(), []
            for row in rows:
                if row["id"] != after + 1:
                    log.error("audit trail: entry %d is missing; not sealing past it", after + 1)
                    break
                prev = link(key, prev, chain_entry(row))
                after = row["id"]
                sealed.append(
                    {"entry_id": after, "mac": prev, "key_id": key.key_id, "sealed_at": at}
                )
            if sealed:
                conn.execute(insert(seals), sealed)
    except IntegrityError:  # another sealer was quicker (SQLite has no advisory lock)
        return 0
    return len(sealed)


def sealed_head(engine: Engine) -> tuple[int, str]:
    """The last sealed entry's id and seal ((0, GENESIS) before the first)."""
    seals = AuditSeal.__table__
    with engine.connect() as conn:
        row = conn.execute(
            select(seals.c.entry_id, seals.c.mac).order_by(seals.c.entry_id.desc()).limit(1)
        ).first()
    return (row.entry_id, row.mac) if row is not None else (0, GENESIS)


def verify_trail(
    engine: Engine,
    key: AuditKey | None,
    checkpoints: Iterable[Checkpoint] = (),
    *,
    now: datetime | None = None,
    grace: timedelta = GRACE,
) -> ChainReport:
    """Verify the whole audit trail in the database, in one consistent snapshot.

    Without a key only the sequence, the presence of seals and the end of the log are
    checked; with it every seal is recomputed, and so are the `checkpoints`' heads."""
    entries, head, seals = AuditEntry.__table__, AuditChainHead.__table__, AuditSeal.__table__
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # pysqlite would read each SELECT in its own snapshot
        head_id = conn.scalar(select(head.c.last_id).where(head.c.id == 1))
        last_sealed = conn.scalar(select(func.max(seals.c.entry_id)))
        query = (
            select(entries, seals.c.mac, seals.c.key_id, seals.c.sealed_at)
            .outerjoin(seals, seals.c.entry_id == entries.c.id)
            .order_by(entries.c.id)
        )
        rows = conn.execution_options(yield_per=1000).execute(query).mappings()
        report = verify_chain(
            (
                (
                    chain_entry(row),
                    None
                    if row["mac"] is None
                    else Seal(row["id"], row["mac"], row["key_id"], row["sealed_at"]),
                )
                for row in rows
            ),
            key,
            head_id=head_id,
            last_sealed_id=last_sealed,
            checkpoints=checkpoints,
            now=now or utcnow(),
            grace=grace,
        )
        conn.rollback()
    return report


# --- checkpoints outside the database -----------------------------------------------------


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Add one JSON line to the checkpoint file, on disk before this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(checkpoint.as_json(), sort_keys=True) + "\n")
        file.flush()
        os.fsync(file.fileno())


def read_checkpoints(path: Path, key: AuditKey) -> list[Checkpoint]:
    """Every checkpoint in the file, each checked against `key`; ValueError names the line."""
    checkpoints = []
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not JSON ({exc})") from exc
            if not isinstance(data, dict):
                raise ValueError(f"{where}: not a checkpoint object")
            checkpoints.append(parse_checkpoint(key, data, where))
    return checkpoints


def post_checkpoint(url: str, checkpoint: Checkpoint, timeout_s: float = 10.0) -> None:
    """POST the checkpoint as JSON; OSError if the receiver did not take it."""
    request = urllib.request.Request(
        url,
        data=json.dumps(checkpoint.as_json(), sort_keys=True).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as reply:
        if not 200 <= reply.status < 300:
            raise OSError(f"checkpoint receiver {url} answered {reply.status}")
