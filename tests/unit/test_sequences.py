"""Range merging of gateway sequence numbers (cloud.domain.sequences), against the slow way:
sorting every seq received."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cloud.domain import sequences

seq_sets = st.sets(st.integers(min_value=0, max_value=300), min_size=1, max_size=120)


def slow_ranges(seqs: set[int]) -> list[tuple[int, int]]:
    """Closed ranges by walking every number from the lowest to the highest."""
    out: list[tuple[int, int]] = []
    start = None
    for n in range(min(seqs), max(seqs) + 2):
        if n in seqs and start is None:
            start = n
        elif n not in seqs and start is not None:
            out.append((start, n - 1))
            start = None
    return out


@given(seq_sets, st.data())
def test_arrival_order_and_duplicates_do_not_change_the_ranges(seqs, data):
    arrivals = data.draw(st.lists(st.sampled_from(sorted(seqs)), max_size=60))
    stream = data.draw(st.permutations([*seqs, *arrivals]))  # every seq, some twice, any order
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8).map(sorted))
    ranges: list[tuple[int, int]] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(stream)], strict=True):  # batches as they come
        ranges = sequences.merge(ranges, sequences.runs(stream[lo:hi]))
    assert ranges == slow_ranges(seqs)


@given(seq_sets)
def test_missing_ranges_are_exactly_the_complement(seqs):
    gaps = sequences.missing(sequences.runs(seqs))
    missing = {n for first, last in gaps for n in range(first, last + 1)}
    assert missing == set(range(min(seqs), max(seqs) + 1)) - seqs
    assert all(first <= last for first, last in gaps)


def test_the_lost_block_is_one_gap():
    received = [*range(1, 1041), *range(1101, 1201)]
    assert sequences.missing(sequences.runs(received)) == [(1041, 1100)]


def test_drops_cover_the_lowest_gaps_and_only_once():
    gaps = [(10, 19), (30, 34), (50, 50)]
    assert [g.covered for g in sequences.account(gaps, 15)] == [True, True, False]
    # 12 drops: the first gap whole, then 2 of the second: its rest is loss, and so is later
    assert [g.covered for g in sequences.account(gaps, 12)] == [True, False, False]
    assert [g.covered for g in sequences.account(gaps, 0)] == [False, False, False]


def test_a_new_buffer_numbering_is_a_jump_not_a_gap():
    ranges = [(1, 100), (150, 200), (1_800_000_000_000_000, 1_800_000_000_000_010)]
    gaps, jumps = sequences.assess(ranges, 0, 10**9)
    assert [(g.first, g.last) for g in gaps] == [(101, 149)]
    assert jumps == [(201, 1_799_999_999_999_999)]


def test_a_range_backwards_is_refused():
    try:
        sequences.merge([], [(5, 4)])
    except ValueError as exc:
        assert "5-4" in str(exc)
    else:
        raise AssertionError("a range with first after last was accepted")
