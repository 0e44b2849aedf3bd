"""The worker processes' collector settings (decision 0015)."""

from __future__ import annotations

import json
import subprocess
import sys

from cloud.entrypoints.runtime import YOUNG_THRESHOLD

PROBE = """
import gc, json, weakref
from cloud.entrypoints.runtime import calm_collector
import sqlalchemy  # start-up objects, to be frozen
calm_collector()
class Node: pass
a, b = Node(), Node()
a.other, b.other = b, a  # a cycle made after set-up
gone = weakref.ref(a)
del a, b
found = gc.collect()
print(json.dumps({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                  "cycle_collected": gone() is None, "found": found}))
"""


def test_start_up_objects_are_frozen_and_later_cycles_still_collected() -> None:
    # In a process of its own: freezing the test runner's heap would outlive the test.
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(done.stdout)
    assert seen["threshold"][0] == YOUNG_THRESHOLD
    assert seen["frozen"] > 10_000  # sqlalchemy's modules, classes and caches
    assert seen["cycle_collected"] and seen["found"] >= 2
