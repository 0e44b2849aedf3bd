"""Settings of the long-running worker processes (the ingest worker and its rules process)."""

from __future__ import annotations

import gc

# A young collection every this many allocations (CPython's default is 700).
YOUNG_THRESHOLD = 50_000


def calm_collector(young: int = YOUNG_THRESHOLD) -> None:
    """Keep the cycle collector off a worker's hot path (decision 0015).

    A worker allocates some fifteen objects per reading (decoded, stored, handed to the
    rules); at 30,000 readings/s CPython's default ran a young collection about 600 times a
    second and, every few seconds, a full one over everything imported at start-up
    (SQLAlchemy's mappers and caches, pydantic's models), stalling every thread of the
    process for milliseconds. Called once set-up is done: what exists then is kept out of
    every later collection (`gc.freeze`: it lives as long as the process), and young
    objects are collected every `young` allocations instead. Cycles are still collected;
    memory between collections grows by at most a few megabytes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, 20, 10)
