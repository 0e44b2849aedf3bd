"""kill -9 the buffer's writer at random points, 25 times: no committed record lost, no gaps.

The writer acknowledges a random number of the oldest records, so chunks are trimmed as well
as deleted while it is killed.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

KILLS = 25


def spans(text: str, word: str) -> list[tuple[int, int]]:
    return [
        (int(a), int(b))
        for line in text.splitlines()
        if line.startswith(word + " ") and len(parts := line.split()) == 3
        for a, b in [parts[1:]]
    ]


def test_buffer_survives_kill_9_at_random_points(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    committed: list[tuple[int, int]] = []
    acked: list[tuple[int, int]] = []
    rng = random.Random(20261121)
    for _ in range(KILLS):
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.buffer_writer", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        time.sleep(rng.uniform(0.3, 0.9))
        writer.send_signal(signal.SIGKILL)
        out, err = writer.communicate(timeout=10)
        assert writer.returncode == -signal.SIGKILL, err
        committed += spans(out, "committed")
        acked += spans(out, "acked")

        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            present: set[int] = set()
            for first, last, data in db.execute("SELECT first, last, data FROM chunks"):
                seqs = [record["seq"] for record in json.loads(b"[" + data + b"]")]
                assert seqs == list(range(first, last + 1)), f"chunk {first} is torn"
                present.update(seqs)
        promised = {s for a, b in committed for s in range(a, b + 1)}
        gone = {s for a, b in acked for s in range(a, b + 1)}
        lost = promised - present - gone
        assert not lost, f"{len(lost)} committed records lost, e.g. {sorted(lost)[:5]}"
        # Sequence numbers have no gaps: whatever was ever given out is present or acked.
        everything = present | gone
        assert everything == set(range(min(everything), max(everything) + 1))

    assert len(committed) > KILLS * 5, "the writer barely wrote anything between kills"
