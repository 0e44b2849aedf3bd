"""A process that writes to a gateway buffer as fast as a busy gateway would, to be killed.

Prints "committed FIRST LAST" after every commit and "acked FIRST LAST" before every
acknowledgement, flushed, so the test knows what the buffer promised before the kill.
"""

from __future__ import annotations

import random
import sys
import threading
from datetime import UTC, datetime

from edge import wire
from edge.buffer import Buffer


def main(path: str) -> None:
    buffer = Buffer(path, max_records=10_000_000)
    lock = threading.Lock()
    out = sys.stdout

    def acknowledge() -> None:
        while True:
            oldest = buffer.pending("reading", 0, random.randint(1, 200))
            if oldest:
                # Said before it is done: a kill in between must not look like a loss.
                with lock:
                    out.write(f"acked {oldest[0][0]} {oldest[-1][0]}\n")
                    out.flush()
                buffer.acknowledge([("reading", oldest[0][0], oldest[-1][0])])

    threading.Thread(target=acknowledge, daemon=True).start()
    while True:
        now = datetime.now(UTC)
        bodies = [
            wire.encode_reading_body(
                f"s{i}", "temperature", 4.0 + i / 10, "C", wire.Quality.OK, now
            )
            for i in range(random.randint(20, 120))
        ]
        first, last = buffer.append("reading", bodies)  # type: ignore[misc]
        with lock:
            out.write(f"committed {first} {last}\n")
            out.flush()


if __name__ == "__main__":
    main(sys.argv[1])
