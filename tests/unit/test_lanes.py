"""The decoder's lanes: one per gateway, taken in turn, each in arrival order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cloud.entrypoints.lanes import Lanes


def test_a_flooding_gateway_does_not_hold_back_another() -> None:
    lanes: Lanes[str] = Lanes()
    for n in range(1000):
        lanes.put("gw-flood", f"junk {n}")
    lanes.put("gw-live", "reading")
    taken = [lanes.get() for _ in range(3)]
    assert taken == ["junk 0", "reading", "junk 1"]
    assert len(lanes) == 998
    assert Lanes[str]().get(timeout=0.01) is None


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers())))
def test_everything_put_is_taken_once_in_arrival_order_per_key(puts: list) -> None:
    lanes: Lanes[tuple] = Lanes()
    for n, (key, value) in enumerate(puts):
        lanes.put(key, (key, n, value))
    taken = []
    while (item := lanes.get()) is not None:
        taken.append(item)
    assert sorted(taken, key=lambda t: t[1]) == [(k, n, v) for n, (k, v) in enumerate(puts)]
    for key in {k for k, _ in puts}:
        mine = [n for k, n, _ in taken if k == key]
        assert mine == sorted(mine)
