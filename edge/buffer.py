"""The gateway's durable buffer: every reading is committed here before anything is sent.

SQLite in WAL mode with synchronous=FULL: a commit that returned survives kill -9 and power
loss (WAL + NORMAL may lose the last commits on power loss). Commits are one transaction per
poll cycle, which spares SD cards. Records leave only when the broker has acknowledged them.

Sequence numbers come from AUTOINCREMENT, so they are never reused within a buffer file, and a
new buffer file starts from the current time in microseconds, so a gateway whose SD card was
replaced does not reuse the (gateway, seq) identities it already sent.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_kind_seq ON records (kind, seq);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class BufferStats:
    depth: int
    oldest_created: float | None
    dropped: int
    next_seq: int


class Buffer:
    """A durable FIFO of encoded records keyed by a per-gateway sequence number.

    Thread-safe: the poller appends while the publisher reads and deletes.
    """

    def __init__(self, path: str | Path, max_records: int = 5_000_000):
        self.path = Path(path)
        self.max_records = max_records
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        with self._transaction():
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            seeded = self._db.execute(
                "SELECT 1 FROM sqlite_sequence WHERE name = 'records'"
            ).fetchone()
            if not seeded:
                self._db.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('records', ?)",
                    (time.time_ns() // 1000,),
                )
        self._depth = self._db.execute("SELECT count(*) FROM records").fetchone()[0]

    @property
    def depth(self) -> int:
        """Records waiting for an acknowledgement."""
        return self._depth

    def _transaction(self) -> _Tx:
        return _Tx(self._db)

    def append(self, kind: str, bodies: Sequence[str]) -> tuple[int, int] | None:
        """Commit records durably; returns the (first, last) sequence numbers given."""
        return self.append_many({kind: bodies}).get(kind)

    def append_many(self, records: dict[str, Sequence[str]]) -> dict[str, tuple[int, int]]:
        """Commit records of several kinds in one transaction; (first, last) seq per kind."""
        spans: dict[str, tuple[int, int]] = {}
        if not any(records.values()):
            return spans
        now = time.time()
        with self._lock, self._transaction():
            for kind, bodies in records.items():
                if not bodies:
                    continue
                self._db.executemany(
                    "INSERT INTO records (kind, body, created) VALUES (?, ?, ?)",
                    ((kind, body, now) for body in bodies),
                )
                last = self._last_seq()
                spans[kind] = (last - len(bodies) + 1, last)
                self._depth += len(bodies)
            if self._depth > self.max_records:
                self._drop_oldest(self._depth - self.max_records)
        return spans

    def _last_seq(self) -> int:
        return self._db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'records'"
        ).fetchone()[0]

    def _drop_oldest(self, count: int) -> None:
        """Make room by dropping the oldest records; the loss is counted, never silent."""
        self._db.execute(
            "DELETE FROM records WHERE seq IN (SELECT seq FROM records ORDER BY seq LIMIT ?)",
            (count,),
        )
        self._bump("dropped", count)
        self._depth -= count
        log.warning("buffer full (%d records): dropped the %d oldest", self.max_records, count)

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def pending(self, kind: str, after_seq: int, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` records of `kind` with seq above `after_seq`, oldest first."""
        with self._lock:
            return self._db.execute(
                "SELECT seq, body FROM records WHERE kind = ? AND seq > ? ORDER BY seq LIMIT ?",
                (kind, after_seq, limit),
            ).fetchall()

    def pending_any(self, after_seq: int, limit: int) -> list[tuple[int, str, str]]:
        """Up to `limit` records of every kind after `after_seq`, as (seq, kind, body)."""
        with self._lock:
            return self._db.execute(
                "SELECT seq, kind, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()

    def acknowledge(self, spans: Iterable[tuple[str, int, int]]) -> int:
        """Delete records the broker acknowledged, given as (kind, first, last) spans.

        Not fsynced (synchronous=NORMAL for this transaction only): a deletion lost to a
        power cut means the records are sent again and the cloud ignores them; a lost
        append would be a lost reading, which is why appends stay FULL.
        """
        spans = list(spans)
        if not spans:
            return 0
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._transaction():
                    deleted = 0
                    for kind, first, last in spans:
                        deleted += self._db.execute(
                            "DELETE FROM records WHERE kind = ? AND seq BETWEEN ? AND ?",
                            (kind, first, last),
                        ).rowcount
                    self._depth -= deleted
            finally:
                self._db.execute("PRAGMA synchronous=FULL")
        return deleted

    def stats(self) -> BufferStats:
        with self._lock:
            oldest_row = self._db.execute(
                "SELECT created FROM records ORDER BY seq LIMIT 1"
            ).fetchone()
            dropped = self._db.execute(
                "SELECT value FROM counters WHERE name = 'dropped'"
            ).fetchone()
            last = self._last_seq()
            return BufferStats(
                self._depth,
                oldest_row[0] if oldest_row else None,
                dropped[0] if dropped else 0,
                last + 1,
            )

    def counts(self) -> dict[str, int]:
        """Records waiting, per kind."""
        with self._lock:
            return dict(self._db.execute("SELECT kind, count(*) FROM records GROUP BY kind"))

    def rows(self, batch: int = 5000) -> Iterator[tuple[int, str, float, str]]:
        """Every waiting record, oldest first, as (seq, kind, created, body)."""
        after = -1
        while True:
            with self._lock:
                page = self._db.execute(
                    "SELECT seq, kind, created, body FROM records WHERE seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (after, batch),
                ).fetchall()
            if not page:
                return
            yield from page
            after = page[-1][0]

    def load_state(self, name: str) -> str | None:
        """A small piece of gateway state kept across restarts (the local alarm's)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
            return row[0] if row else None

    def save_state(self, name: str, value: str) -> None:
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO state (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def integrity_check(self) -> str:
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
