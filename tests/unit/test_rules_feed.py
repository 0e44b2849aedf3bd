"""The rules' feed: a backlog read while the rules wait for the writer's word is kept and
evaluated next, in order; only a wait for the database drops readings past the limit (they
are read back from the rules mark)."""

from __future__ import annotations

import queue

from cloud.entrypoints.rules_runner import STORED, UNSTORED, Feed, Work
from cloud.service_layer.rules import RulesConfig


def feed_of(messages: list[object], limit: int) -> Feed:
    waiting: queue.Queue[object] = queue.Queue()
    for message in messages:
        waiting.put(message)

    def get(timeout: float | None) -> object:
        return waiting.get(timeout=timeout or 0.01)

    return Feed(get, RulesConfig(), limit)


def test_a_backlog_read_while_the_writer_commits_is_kept_in_order() -> None:
    backlog = [(UNSTORED, n, [("gw", n, "s")] * 10) for n in range(2, 12)]  # 100 > limit 25
    feed = feed_of([*backlog, (STORED, 1), *[(STORED, n) for n in range(2, 12)]], limit=25)
    work = Work(unstored={1: [("gw", 1, "s")]}, size=1)
    assert feed.stored(work)
    assert not feed.behind  # nothing dropped: no readings to read back and replay as late
    taken: list[int] = []
    while (next_work := feed.take(0.01)) is not None:
        taken += list(next_work.unstored)
        assert feed.stored(next_work)
    assert taken == list(range(2, 12))


def test_a_wait_for_the_database_drops_past_the_limit() -> None:
    backlog = [(UNSTORED, n, [("gw", n, "s")] * 10) for n in range(2, 12)]
    feed = feed_of(backlog, limit=25)
    feed.pause(0.3)
    assert feed.behind  # read back from the rules mark once the database is back
