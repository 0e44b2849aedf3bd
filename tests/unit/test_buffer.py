"""The gateway buffer: durable sequence numbers, chunks, acknowledgement, the cap, migration."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import wire
from edge.buffer import FORMAT, MAX_CHUNK_RECORDS, Buffer, BufferFormatError
from edge.publisher import envelopes
from edge.wire import Quality


def test_sequence_starts_from_the_clock_and_survives_reopening(tmp_path: Path) -> None:
    before = time.time_ns() // 1000
    buffer = Buffer(tmp_path / "b.sqlite")
    first, last = buffer.append("reading", ["a", "b", "c"])
    assert before < first and last == first + 2
    buffer.acknowledge([("reading", first, last)])
    buffer.close()
    reopened = Buffer(tmp_path / "b.sqlite")
    again, _ = reopened.append("reading", ["d"])
    assert again == last + 1, "a sequence number was reused after acknowledgement and restart"
    assert reopened.depth == 1


def test_pending_is_oldest_first_and_acknowledge_deletes_only_the_span(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    first, _ = buffer.append("reading", [f"r{i}" for i in range(10)])
    page = buffer.pending("reading", 0, 4)
    assert [body for _, body in page] == ["r0", "r1", "r2", "r3"]
    assert buffer.pending("reading", page[-1][0], 100)[0][1] == "r4"
    assert buffer.acknowledge([("reading", first, first + 3)]) == 4
    assert buffer.depth == 6 and buffer.stats().depth == 6
    assert buffer.pending("reading", 0, 1)[0][1] == "r4"


def test_cap_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", max_records=1000)
    buffer.append("reading", [f"r{i}" for i in range(900)])
    buffer.append("reading", [f"s{i}" for i in range(250)])
    stats = buffer.stats()
    assert stats.depth == 1000
    assert stats.dropped == 150
    assert buffer.pending("reading", 0, 1)[0][1] == "r150"
    assert buffer.integrity_check() == "ok"


def test_state_is_kept_across_reopening(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    assert buffer.load_state("local_alarm") is None
    buffer.save_state("local_alarm", '{"cold": {"on": true}}')
    buffer.save_state("local_alarm", '{"cold": {"on": false}}')
    buffer.close()
    assert Buffer(tmp_path / "b.sqlite").load_state("local_alarm") == '{"cold": {"on": false}}'


def test_a_poll_cycle_is_one_chunk_of_records_encoded_with_their_seq(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    spans = buffer.append_many({"reading": ['"n":1}', '"n":2}'], "event": ['"n":3}']})
    (first, last), (event, _) = spans["reading"], spans["event"]
    chunks = buffer.chunks(0, 100)
    assert [(c.kind, c.first, c.last) for c in chunks] == [
        ("reading", first, last),
        ("event", event, event),
    ]
    assert chunks[0].data == f'{{"seq":{first},"n":1}},{{"seq":{last},"n":2}}'.encode()
    assert chunks[0].piece(1, 2) == f'{{"seq":{last},"n":2}}'.encode()
    assert buffer.counts() == {"reading": 2, "event": 1}


def test_large_appends_are_split_into_bounded_chunks(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    first, last = buffer.append("reading", [f'"i":{i}}}' for i in range(1200)])
    sizes = [c.count for c in buffer.chunks(0, 10_000)]
    assert sizes == [MAX_CHUNK_RECORDS, MAX_CHUNK_RECORDS, 200]
    assert [seq for seq, _ in buffer.pending("reading", 0, 2000)] == list(range(first, last + 1))


def test_partial_acknowledgement_trims_a_chunk_to_what_is_unacknowledged(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    first, _ = buffer.append("reading", [f'"i":{i}}}' for i in range(10)])
    # The middle of the chunk: what is left on either side stays, in two chunks.
    assert buffer.acknowledge([("reading", first + 3, first + 5)]) == 3
    assert [(c.first - first, c.last - first) for c in buffer.chunks(0, 100)] == [(0, 2), (6, 9)]
    assert [body for _, body in buffer.pending("reading", 0, 100)] == [
        f'"i":{i}}}' for i in (0, 1, 2, 6, 7, 8, 9)
    ]
    # An acknowledgement repeated (paho republished) deletes nothing more.
    assert buffer.acknowledge([("reading", first + 3, first + 5)]) == 0
    # Adjacent spans acknowledged together delete whole chunks, whatever their order.
    assert (
        buffer.acknowledge([("reading", first + 6, first + 9), ("reading", first, first + 2)]) == 7
    )
    assert buffer.depth == 0 and buffer.chunks(0, 100) == []
    assert buffer.integrity_check() == "ok"


def test_acknowledging_one_kind_leaves_the_other_kinds_in_its_span(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    a = buffer.append_many({"reading": ["r1", "r2"], "event": ["e1"]})
    b = buffer.append_many({"reading": ["r3"], "observation": ["o1"]})
    assert buffer.acknowledge([("reading", a["reading"][0], b["reading"][1])]) == 3
    assert buffer.counts() == {"event": 1, "observation": 1}
    assert [seq for seq, *_ in buffer.rows()] == [a["event"][0], b["observation"][0]]


def test_cap_drops_whole_and_partial_chunks_oldest_first(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", max_records=250)
    for cycle in range(3):
        buffer.append("reading", [f"c{cycle}-{i}" for i in range(100)])
    stats = buffer.stats()
    assert (stats.depth, stats.dropped) == (250, 50)
    assert buffer.pending("reading", 0, 1)[0][1] == "c0-50"
    buffer.close()
    reopened = Buffer(tmp_path / "b.sqlite", max_records=250)
    assert reopened.stats().dropped == 50 and reopened.depth == 250


def old_format_buffer(path: Path) -> None:
    """A buffer file as the gateway wrote it before chunks: one row per record."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        """
        PRAGMA journal_mode=WAL;
        CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
            body TEXT NOT NULL, created REAL NOT NULL);
        CREATE INDEX records_kind_seq ON records (kind, seq);
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO counters VALUES ('dropped', 7);
        INSERT INTO state VALUES ('local_alarm', '{}');
        """
    )
    rows = [
        (seq, "event" if seq == 1005 else "reading", f'"n":{seq}}}', 1.0e9 + seq)
        for seq in range(1001, 1011)
    ]
    db.executemany("INSERT INTO records VALUES (?, ?, ?, ?)", rows)
    # Acknowledged earlier: the last two and one in the middle; the counter is past them.
    db.execute("DELETE FROM records WHERE seq IN (1003, 1009, 1010)")
    db.close()


def test_an_old_format_buffer_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    old_format_buffer(path)
    buffer = Buffer(path)
    kept = [1001, 1002, 1004, 1005, 1006, 1007, 1008]
    assert [(seq, kind) for seq, kind, *_ in buffer.rows()] == [
        (seq, "event" if seq == 1005 else "reading") for seq in kept
    ]
    assert [body for *_, body in buffer.rows()] == [f'"n":{seq}}}' for seq in kept]
    assert [(c.first, c.last) for c in buffer.chunks(0, 100)] == [
        (1001, 1002),
        (1004, 1004),
        (1005, 1005),
        (1006, 1008),
    ]
    stats = buffer.stats()
    assert (stats.depth, stats.dropped, stats.next_seq) == (7, 7, 1011)
    assert stats.oldest_created == 1.0e9 + 1001
    assert buffer.load_state("local_alarm") == "{}"
    assert buffer.append("reading", ["new"]) == (1011, 1011), "a seq was reused after migration"
    assert buffer.integrity_check() == "ok"
    buffer.close()
    with sqlite3.connect(path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        assert "records" not in tables and "chunks" in tables
        assert db.execute("PRAGMA user_version").fetchone()[0] == FORMAT


def test_a_buffer_from_a_newer_gateway_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {FORMAT + 1}")
    with pytest.raises(BufferFormatError, match="update the gateway software or move the file"):
        Buffer(path)


def test_envelopes_are_cut_at_records_per_message_across_chunks(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    now = datetime.now(UTC)
    for cycle in range(3):
        bodies = [
            wire.encode_reading_body(f"s{i}", "temperature", cycle + i / 10, "C", Quality.OK, now)
            for i in range(7)
        ]
        buffer.append("reading", bodies)
    chunks = buffer.chunks(0, 100)
    cut = list(envelopes("reading", chunks, per_message=5))
    assert [e.count for e in cut] == [5, 5, 5, 5, 1]
    expected = [seq for seq, _ in buffer.pending("reading", 0, 100)]
    seen = []
    for envelope in cut:
        payload = wire.assemble_envelope("gw1", "site1", envelope.records, now)
        _, message = wire.decode(wire.topic("site1", "gw1", "readings"), payload)
        seqs = [r.seq for r in message.records]  # type: ignore[union-attr]
        assert seqs == list(range(envelope.first, envelope.last + 1))
        seen += seqs
    assert seen == expected
    # Each envelope's acknowledgement deletes exactly its records, even mid-chunk.
    for envelope in cut:
        before = buffer.depth
        assert buffer.acknowledge([("reading", envelope.first, envelope.last)]) == envelope.count
        assert buffer.depth == before - envelope.count
    assert buffer.depth == 0 and buffer.integrity_check() == "ok"


Listing = list[tuple[str, int, int, bytes, list[int]]]


def _listing(buffer: Buffer, after: int = 0, records: int = 10**9) -> Listing:
    return [
        (c.kind, c.first, c.last, bytes(c.data), list(c.ends))
        for c in buffer.chunks(after, records)
    ]


def _file_listing(path: Path, after: int = 0, records: int = 10**9) -> Listing:
    """What a gateway restarted now would read: the file alone."""
    reader = Buffer(path, max_records=10**6, memory_bytes=0)
    try:
        return _listing(reader, after, records)
    finally:
        reader.close()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.sampled_from(["reading", "event"]), st.integers(1, 30)),
            st.tuples(st.just("ack"), st.integers(0, 80), st.integers(0, 12)),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_chunks_kept_in_memory_read_the_same_as_the_file(operations: list[tuple]) -> None:
    """Whatever is appended, trimmed or dropped, memory never serves what the file lacks."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.sqlite"
        buffer = Buffer(path, max_records=120, memory_bytes=2000)
        start = None
        for op, a, b in operations:
            if op == "append":
                first, _ = buffer.append(a, [f'"n":{i}}}' for i in range(b)])
                start = first if start is None else start
            elif start is not None:
                buffer.acknowledge([("reading", start + a, start + a + b)])
            assert buffer.memory_used <= 2000
            assert _listing(buffer) == _file_listing(path)
            # From the middle too, a page at a time, as the drain reads with its cursor.
            for after in (start or 0) + 5, (start or 0) + 40:
                assert _listing(buffer, after, 50) == _file_listing(path, after, 50)
        assert buffer.depth == sum(c[2] - c[1] + 1 for c in _file_listing(path))
        buffer.close()


def test_a_backlog_drains_from_memory_and_acknowledged_chunks_leave_it(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", memory_bytes=1 << 20)
    spans = [buffer.append("reading", ['"i":1}'] * 50) for _ in range(4)]
    assert buffer.memory_used > 0
    held = buffer.memory_used
    # Served from memory: the very objects appended, not copies read back from the file.
    assert buffer.chunks(0, 1000)[0] is buffer.chunks(0, 1000)[0]
    buffer.acknowledge([("reading", spans[0][0], spans[1][1])])
    assert 0 < buffer.memory_used < held
    buffer.acknowledge([("reading", spans[2][0], spans[3][1])])
    assert buffer.memory_used == 0 and buffer.chunks(0, 1000) == []
