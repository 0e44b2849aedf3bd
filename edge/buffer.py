"""The gateway's durable buffer: every record is committed here before anything is sent.

SQLite in WAL mode with synchronous=FULL: a commit that returned survives kill -9 and power
loss (WAL + NORMAL may lose the last commits on power loss). Records are stored in chunks,
one row per kind per poll cycle, holding the records already encoded as envelope JSON with
their sequence numbers, so a backlog drains as "read a few rows, join bytes, publish" and a
poll cycle writes one row instead of a hundred (docs/decisions/0010-buffer-chunks.md).
Records leave only when the broker has acknowledged them; a chunk only partly acknowledged
is trimmed to the records still waiting.

The newest chunks also stay in memory, up to `memory_bytes`: a backlog left by a network
outage then drains without reading the SD card again (16 MiB hold about two hours of 100
readings per 5 s). The file stays the truth: memory holds exactly the file's chunks from a
sequence number on, and after a restart or a failed transaction the backlog is read from
the file.

Sequence numbers come from a counter committed in the same transaction as the records, so
they are gap-free and never reused within a buffer file, and a new buffer file starts from
the current time in microseconds, so a gateway whose SD card was replaced does not reuse the
(gateway, seq) identities it already sent (docs/decisions/0002-sequence-numbers.md).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge import wire

log = logging.getLogger(__name__)

FORMAT = 2  # PRAGMA user_version of a chunked buffer; 0 with a `records` table is format 1
MAX_CHUNK_RECORDS = 500  # larger appends are split, which bounds the cost of a trim

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    first INTEGER PRIMARY KEY,
    last INTEGER NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    ends BLOB NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL)
"""


class BufferFormatError(RuntimeError):
    """A buffer file this version cannot read."""


@dataclass(frozen=True)
class BufferStats:
    depth: int
    oldest_created: float | None
    dropped: int
    next_seq: int


@dataclass(slots=True)
class Chunk:
    """Records first..last of one kind, encoded as envelope JSON and joined with commas.

    `ends[i]` is the byte offset where record first + i ends; a comma follows every record
    but the last.
    """

    kind: str
    first: int
    last: int
    created: float
    data: bytes
    ends: Sequence[int]  # uint32 offsets, a view of the stored bytes

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def piece(self, start: int, stop: int) -> bytes:
        """The records with index start..stop-1, joined, as they go into an envelope."""
        begin = 0 if start == 0 else self.ends[start - 1] + 1
        return self.data[begin : self.ends[stop - 1]]

    def records(self) -> Iterator[tuple[int, str]]:
        """(seq, body) of every record, the body without its seq as it was appended."""
        begin = 0
        for i, end in enumerate(self.ends):
            seq = self.first + i
            text = self.data[begin:end].decode()
            yield seq, text[len(wire.encode_record(seq, "")) :]
            begin = end + 1


def _offsets(stored: bytes) -> Sequence[int]:
    """The `ends` column as uint32 offsets, without copying."""
    return memoryview(stored).cast("I")


def encode_chunk(first: int, bodies: Sequence[str]) -> tuple[bytes, array[int]]:
    """Bodies as envelope records numbered from `first`, and where each one ends."""
    encoded = [wire.encode_record(seq, body).encode() for seq, body in enumerate(bodies, first)]
    ends = array("I")
    offset = -1
    for record in encoded:
        offset += len(record) + 1
        ends.append(offset)
    return b",".join(encoded), ends


def coalesce(spans: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """(kind, first, last) spans with the touching ones of a kind merged into one."""
    merged: list[tuple[str, int, int]] = []
    for kind, first, last in sorted(spans, key=lambda span: (span[0], span[1])):
        if merged and merged[-1][0] == kind and merged[-1][2] + 1 >= first:
            merged[-1] = (kind, merged[-1][1], max(merged[-1][2], last))
        else:
            merged.append((kind, first, last))
    return merged


class _Memory:
    """The newest chunks of the file: every chunk whose first seq is >= `start` is held here.

    Appends come in at the end; the oldest leave when more than `capacity` bytes are held,
    which raises `start`. Chunks are kept in seq order.
    """

    def __init__(self, capacity: int, start: int):
        self.capacity = capacity
        self.start = start
        self.chunks: dict[int, Chunk] = {}
        self.size = 0

    @staticmethod
    def _bytes(chunk: Chunk) -> int:
        return len(chunk.data) + 4 * chunk.count

    def append(self, chunk: Chunk) -> None:
        """A chunk just written, above every chunk in the file."""
        self.chunks[chunk.first] = chunk
        self.size += self._bytes(chunk)
        while self.size > self.capacity:
            self.size -= self._bytes(self.chunks.pop(next(iter(self.chunks))))
            self.start = next(iter(self.chunks), chunk.last + 1)

    def discard(self, first: int) -> None:
        chunk = self.chunks.pop(first, None)
        if chunk is not None:
            self.size -= self._bytes(chunk)

    def discard_range(self, kind: str, first: int, last: int) -> None:
        """Chunks of `kind` starting in first..last left the file."""
        gone = []
        for start, chunk in self.chunks.items():
            if start > last:
                break
            if start >= first and chunk.kind == kind:
                gone.append(start)
        for start in gone:
            self.discard(start)

    def replace(self, first: int, pieces: list[Chunk]) -> None:
        """Chunk `first` was trimmed to `pieces` (none, one or two)."""
        self.discard(first)
        kept = [piece for piece in pieces if piece.first >= self.start]
        if kept:
            for piece in kept:
                self.chunks[piece.first] = piece
                self.size += self._bytes(piece)
            self.chunks = dict(sorted(self.chunks.items()))

    def range(self, after: int, records: int, below: int | None = None) -> list[Chunk]:
        """Chunks above seq `after` starting below `below` (default: the first one + records)."""
        found: list[Chunk] = []
        for first, chunk in self.chunks.items():
            if first <= after:
                continue
            if below is None:
                below = first + records
            if first >= below:
                break
            found.append(chunk)
        return found


class Buffer:
    """A durable FIFO of encoded records keyed by a per-gateway sequence number.

    Thread-safe: the poller appends while the publisher reads and deletes.
    """

    def __init__(
        self, path: str | Path, max_records: int = 5_000_000, memory_bytes: int = 16 << 20
    ):
        self.path = Path(path)
        self.max_records = max_records
        self.memory_bytes = memory_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        # Freed pages are not zeroed where that costs extra writes (some builds zero them
        # all): deleting acknowledged readings then costs a few page writes, not their size.
        self._db.execute("PRAGMA secure_delete=FAST")
        self._db.execute("PRAGMA mmap_size=33554432")
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > FORMAT:
                raise BufferFormatError(
                    f"buffer {self.path} has format {version}, newer than this gateway "
                    f"understands ({FORMAT}); update the gateway software or move the file away"
                )
            for statement in _SCHEMA.split(";"):
                self._db.execute(statement)
            if version < FORMAT:
                self._migrate()
                self._db.execute(f"PRAGMA user_version = {FORMAT}")
        self._depth: int = self._db.execute(
            "SELECT coalesce(sum(last - first + 1), 0) FROM chunks"
        ).fetchone()[0]
        self._memory = _Memory(memory_bytes, self._last_seq() + 1)

    def _migrate(self) -> None:
        """A new file gets a clock-seeded counter; a format 1 file has its records rechunked.

        Format 1 kept one row per record (`records`, seq from AUTOINCREMENT). Its records are
        regrouped into chunks of consecutive seq of one kind, in the same transaction, and
        the counter continues from the old one, so no number is lost or reused.
        """
        old = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'"
        ).fetchone()
        if not old:
            self._db.execute(
                "INSERT OR IGNORE INTO counters (name, value) VALUES ('last_seq', ?)",
                (time.time_ns() // 1000,),
            )
            return
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        last_seq = row[0] if row else time.time_ns() // 1000
        moved = 0
        run: list[str] = []
        run_kind, run_first, run_created = "", 0, 0.0
        # Streamed, not fetched: an old buffer after a long outage can hold millions of rows.
        for seq, kind, body, created in self._db.execute(
            "SELECT seq, kind, body, created FROM records ORDER BY seq"
        ):
            continues = run and kind == run_kind and seq == run_first + len(run)
            if not continues or len(run) >= MAX_CHUNK_RECORDS:
                if run:
                    self._insert(run_kind, run_first, run, run_created)
                    moved += len(run)
                run, run_kind, run_first, run_created = [], kind, seq, created
            run.append(body)
        if run:
            self._insert(run_kind, run_first, run, run_created)
            moved += len(run)
        self._db.execute("DROP TABLE records")
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES ('last_seq', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (last_seq,),
        )
        log.warning(
            "buffer %s migrated to chunked format %d: %d records kept, next seq %d",
            self.path,
            FORMAT,
            moved,
            last_seq + 1,
        )

    @property
    def depth(self) -> int:
        """Records waiting for an acknowledgement."""
        return self._depth

    @property
    def memory_used(self) -> int:
        """Bytes of recent chunks held in memory to spare the file a read."""
        return self._memory.size

    def _transaction(self) -> _Tx:
        return _Tx(self._db)

    def _insert(self, kind: str, first: int, bodies: Sequence[str], created: float) -> Chunk:
        data, ends = encode_chunk(first, bodies)
        last = first + len(bodies) - 1
        self._db.execute(
            "INSERT INTO chunks (first, last, kind, created, ends, data) VALUES (?, ?, ?, ?, ?, ?)",
            (first, last, kind, created, ends.tobytes(), data),
        )
        return Chunk(kind, first, last, created, data, ends)

    def _forget_memory(self) -> None:
        """A transaction failed: memory may no longer match the file, so start afresh."""
        self._memory = _Memory(self.memory_bytes, self._last_seq() + 1)

    def append(self, kind: str, bodies: Sequence[str]) -> tuple[int, int] | None:
        """Commit records durably; returns the (first, last) sequence numbers given."""
        return self.append_many({kind: bodies}).get(kind)

    def append_many(self, records: dict[str, Sequence[str]]) -> dict[str, tuple[int, int]]:
        """Commit records of several kinds in one transaction; (first, last) seq per kind."""
        spans: dict[str, tuple[int, int]] = {}
        if not any(records.values()):
            return spans
        now = time.time()
        written: list[Chunk] = []
        with self._lock:
            depth = self._depth
            try:
                with self._transaction():
                    last = self._last_seq()
                    for kind, bodies in records.items():
                        if not bodies:
                            continue
                        for start in range(0, len(bodies), MAX_CHUNK_RECORDS):
                            part = bodies[start : start + MAX_CHUNK_RECORDS]
                            written.append(self._insert(kind, last + 1, part, now))
                            last += len(part)
                        spans[kind] = (last - len(bodies) + 1, last)
                        self._depth += len(bodies)
                    self._db.execute(
                        "UPDATE counters SET value = ? WHERE name = 'last_seq'", (last,)
                    )
                    for chunk in written:  # before dropping, which trims memory too
                        self._memory.append(chunk)
                    if self._depth > self.max_records:
                        self._drop_oldest(self._depth - self.max_records)
            except BaseException:
                self._depth = depth  # rolled back: nothing was added or dropped
                self._forget_memory()
                raise
        return spans

    def _last_seq(self) -> int:
        seq: int = self._db.execute(
            "SELECT value FROM counters WHERE name = 'last_seq'"
        ).fetchone()[0]
        return seq

    def _drop_oldest(self, count: int) -> None:
        """Make room by dropping the oldest records; the loss is counted, never silent."""
        left = count
        for first, last, kind in self._db.execute(
            "SELECT first, last, kind FROM chunks ORDER BY first LIMIT ?", (count,)
        ).fetchall():
            if left <= 0:
                break
            upto = min(last, first + left - 1)
            left -= self._remove(kind, first, last, first, upto)
        self._bump("dropped", count - left)
        self._depth -= count - left
        log.warning(
            "buffer full (%d records): dropped the %d oldest", self.max_records, count - left
        )

    def _remove(self, kind: str, first: int, last: int, lo: int, hi: int) -> int:
        """Remove records lo..hi of chunk `first`; keeps what lies outside. Returns count."""
        lo, hi = max(lo, first), min(hi, last)
        if lo > hi:
            return 0
        if lo == first and hi == last:
            self._db.execute("DELETE FROM chunks WHERE first = ?", (first,))
            self._memory.discard(first)
            return hi - lo + 1
        created, ends, data = self._db.execute(
            "SELECT created, ends, data FROM chunks WHERE first = ?", (first,)
        ).fetchone()
        chunk = Chunk(kind, first, last, created, data, _offsets(ends))
        self._db.execute("DELETE FROM chunks WHERE first = ?", (first,))
        pieces = []
        for keep_first, keep_last in ((first, lo - 1), (hi + 1, last)):
            if keep_first > keep_last:
                continue
            start, stop = keep_first - first, keep_last - first + 1
            begin = 0 if start == 0 else chunk.ends[start - 1] + 1
            offsets = array("I", (end - begin for end in chunk.ends[start:stop]))
            piece = Chunk(kind, keep_first, keep_last, created, chunk.piece(start, stop), offsets)
            self._db.execute(
                "INSERT INTO chunks (first, last, kind, created, ends, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (keep_first, keep_last, kind, created, offsets.tobytes(), piece.data),
            )
            pieces.append(piece)
        self._memory.replace(first, pieces)
        return hi - lo + 1

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def chunks(self, after_seq: int, records: int) -> list[Chunk]:
        """Whole chunks from the first above `after_seq` for about `records` seq, oldest first.

        Only what memory does not hold is read from the file.
        """
        records = max(1, records)
        with self._lock:
            memory = self._memory
            if after_seq + 1 >= memory.start:
                return memory.range(after_seq, records)
            found = [
                Chunk(kind, first, last, created, data, _offsets(ends))
                for kind, first, last, created, data, ends in self._db.execute(
                    "SELECT kind, first, last, created, data, ends FROM chunks "
                    "WHERE first >= (SELECT min(first) FROM chunks WHERE first > :after) "
                    "AND first < (SELECT min(first) FROM chunks WHERE first > :after) + :records "
                    "AND first < :start ORDER BY first",
                    {"after": after_seq, "records": records, "start": memory.start},
                )
            ]
            if not found:
                return memory.range(after_seq, records)
            return found + memory.range(found[-1].last, records, below=found[0].first + records)

    def pending(self, kind: str, after_seq: int, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` records of `kind` with seq above `after_seq`, oldest first."""
        found: list[tuple[int, str]] = []
        for chunk in self._chunks_from(after_seq):
            if chunk.kind != kind:
                continue
            for seq, body in chunk.records():
                if seq > after_seq:
                    found.append((seq, body))
                    if len(found) >= limit:
                        return found
        return found

    def _chunks_from(self, after_seq: int, batch: int = 32) -> Iterator[Chunk]:
        """Every chunk holding a seq above `after_seq`, oldest first, a page at a time."""
        with self._lock:
            row = self._db.execute(
                "SELECT max(first) FROM chunks WHERE first <= ?", (after_seq,)
            ).fetchone()
        after = (row[0] - 1) if row[0] is not None else after_seq
        while True:
            with self._lock:
                page = self._db.execute(
                    "SELECT kind, first, last, created, data, ends FROM chunks WHERE first > ? "
                    "ORDER BY first LIMIT ?",
                    (after, batch),
                ).fetchall()
            if not page:
                return
            for kind, first, last, created, data, ends in page:
                if last > after_seq:
                    chunk = Chunk(kind, first, last, created, data, _offsets(ends))
                    yield chunk
            after = page[-1][1]

    def acknowledge(self, spans: Iterable[tuple[str, int, int]]) -> int:
        """Delete records the broker acknowledged, given as (kind, first, last) spans.

        Chunks inside a span are deleted, chunks that straddle its ends are trimmed to the
        records outside it. Not fsynced (synchronous=NORMAL for this transaction only): a
        deletion lost to a power cut means the records are sent again and the cloud ignores
        them; a lost append would be a lost reading, which is why appends stay FULL.
        """
        spans = coalesce(spans)
        if not spans:
            return 0
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._transaction():
                    deleted = 0
                    for kind, first, last in spans:
                        self._memory.discard_range(kind, first, last)
                        inside = (first, last, last, kind)
                        deleted += self._db.execute(
                            "SELECT coalesce(sum(last - first + 1), 0) FROM chunks "
                            "WHERE first BETWEEN ? AND ? AND last <= ? AND kind = ?",
                            inside,
                        ).fetchone()[0]
                        self._db.execute(
                            "DELETE FROM chunks WHERE first BETWEEN ? AND ? AND last <= ? "
                            "AND kind = ?",
                            inside,
                        )
                        for chunk_first, chunk_last in self._db.execute(
                            "SELECT first, last FROM chunks WHERE first BETWEEN ? AND ? "
                            "AND last >= ? AND kind = ?",
                            (first - MAX_CHUNK_RECORDS + 1, last, first, kind),
                        ).fetchall():
                            deleted += self._remove(kind, chunk_first, chunk_last, first, last)
            except BaseException:
                self._forget_memory()
                raise
            finally:
                self._db.execute("PRAGMA synchronous=FULL")
            self._depth -= deleted
        return deleted

    def stats(self) -> BufferStats:
        with self._lock:
            oldest_row = self._db.execute(
                "SELECT created FROM chunks ORDER BY first LIMIT 1"
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
            return dict(
                self._db.execute("SELECT kind, sum(last - first + 1) FROM chunks GROUP BY kind")
            )

    def rows(self) -> Iterator[tuple[int, str, float, str]]:
        """Every waiting record, oldest first, as (seq, kind, created, body)."""
        for chunk in self._chunks_from(-1):
            for seq, body in chunk.records():
                yield seq, chunk.kind, chunk.created, body

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
            verdict: str = self._db.execute("PRAGMA integrity_check").fetchone()[0]
            return verdict

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
