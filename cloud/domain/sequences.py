"""Sequence continuity: the ranges of a gateway's sequence numbers received, and the gaps.

Every record a gateway sends (reading, RFID observation, event) carries the gateway's `seq`,
dense within one buffer file (decision 0002), so a number never received is a record lost.
The cloud keeps, per gateway, the closed ranges received, merged as records arrive; the
missing ranges are the holes between them. Pure: no database, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

Range = tuple[int, int]  # first and last seq, both included, first <= last


def runs(seqs: Iterable[int]) -> list[Range]:
    """The closed ranges a set of sequence numbers makes, in order; repeats count once."""
    out: list[Range] = []
    for seq in sorted(set(seqs)):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


def merge(ranges: Iterable[Range], more: Iterable[Range]) -> list[Range]:
    """Ranges and more ranges as disjoint, non-adjacent closed ranges, in order."""
    out: list[Range] = []
    for first, last in sorted([*ranges, *more]):
        if first > last:
            raise ValueError(f"range {first}-{last}: its first seq is after its last")
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def missing(ranges: Iterable[Range]) -> list[Range]:
    """The holes between merged ranges: the seqs above the first range received and below
    the last that were never received."""
    merged = merge(ranges, [])
    return [(a[1] + 1, b[0] - 1) for a, b in zip(merged, merged[1:], strict=False)]


def size(r: Range) -> int:
    return r[1] - r[0] + 1


@dataclass(frozen=True)
class Gap:
    """A missing range and whether the drops the gateway reported account for it."""

    first: int
    last: int
    covered: bool

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def label(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


def account(gaps: Iterable[Range], dropped: int) -> list[Gap]:
    """Mark the gaps the gateway's reported drops explain.

    A full buffer drops its oldest records (edge/buffer.py), so drops explain the lowest
    gaps: `dropped` (the gateway's count since its buffer began) is spent on the gaps in seq
    order, each covered whole or not at all. A drop counted once covers one record once.
    """
    left = max(dropped, 0)
    out = []
    for first, last in sorted(gaps):
        n = last - first + 1
        covered = n <= left
        left = left - n if covered else 0
        out.append(Gap(first, last, covered))
    return out


def assess(ranges: Iterable[Range], dropped: int, jump: int) -> tuple[list[Gap], list[Range]]:
    """A gateway's holes as gaps (marked covered or not by `dropped`) and jumps: holes of
    `jump` numbers or more, a new buffer's numbering rather than records lost."""
    holes = missing(ranges)
    jumps = [h for h in holes if size(h) >= jump]
    return account([h for h in holes if size(h) < jump], dropped), jumps
