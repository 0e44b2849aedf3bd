"""The gateway buffer: durable sequence numbers, acknowledgement, the size cap."""

from __future__ import annotations

import time
from pathlib import Path

from edge.buffer import Buffer


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
