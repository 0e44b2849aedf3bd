"""Keeping the audit trail: seal new entries into the keyed chain every few seconds, and
every few minutes write the signed head outside the database (a file of JSON lines, and a
receiver's URL if one is given), where someone who can rewrite the database cannot reach."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from cloud.adapters.audit_seals import append_checkpoint, post_checkpoint, seal_pending, sealed_head
from cloud.domain.audit_chain import AuditKey, Checkpoint, sign_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class AuditKeeping:
    """The key, and where and how often the head is checkpointed."""

    key: AuditKey
    checkpoint_file: Path | None = None
    checkpoint_url: str | None = None
    checkpoint_every: timedelta = timedelta(minutes=15)
    seal_every_s: float = 5.0


class AuditKeeper:
    """Seals and checkpoints the trail of one database."""

    def __init__(self, engine: Engine, keeping: AuditKeeping):
        self.engine, self.keeping = engine, keeping
        self.checkpointed_at: datetime | None = None
        self.checkpointed: tuple[int, str] | None = None

    def seal(self) -> int:
        """Seal what is new; how many entries."""
        return seal_pending(self.engine, self.keeping.key)

    def checkpoint(self, now: datetime) -> Checkpoint | None:
        """Write the signed head out if a checkpoint is due and the head moved since."""
        keeping = self.keeping
        if keeping.checkpoint_file is None and keeping.checkpoint_url is None:
            return None
        if (
            self.checkpointed_at is not None
            and now - self.checkpointed_at < keeping.checkpoint_every
        ):
            return None
        self.seal()
        head = sealed_head(self.engine)
        if head[0] == 0 or head == self.checkpointed:
            self.checkpointed_at = now
            return None
        checkpoint = sign_checkpoint(keeping.key, head[0], head[1], now)
        if keeping.checkpoint_file is not None:
            append_checkpoint(keeping.checkpoint_file, checkpoint)
        if keeping.checkpoint_url is not None:
            try:
                post_checkpoint(keeping.checkpoint_url, checkpoint)
            except OSError as exc:
                log.error("audit checkpoint at entry %d not taken by %s: %s",
                          head[0], keeping.checkpoint_url, exc)  # fmt: skip
        self.checkpointed_at, self.checkpointed = now, head
        log.info("audit trail checkpointed at entry %d", head[0])
        return checkpoint
