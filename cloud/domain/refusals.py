"""How many refused messages of one gateway get a dead-letter row and a log line of their own.

A token bucket per gateway (decision 0028): a gateway's refusals get rows of their own at
`rate` a second on average, `burst` at once; beyond that they are only counted, in one row
per gateway and minute, and logged once per gateway every `report_every` seconds with how
many were counted. A flood of junk then costs a few rows and lines a minute, whatever its
rate, and a gateway refusing one message now and then still gets every one kept whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_GATEWAYS = 10_000  # buckets kept at most


@dataclass
class RefusalBudget:
    """Per gateway (the one a refused message's topic names; None if none): own rows and
    log lines, by a token bucket on the caller's clock (seconds)."""

    rate: float = 1.0  # own rows a second, on average
    burst: float = 20.0  # own rows at once
    report_every: float = 60.0  # seconds between the log lines of a gateway's counted ones
    _buckets: dict[str | None, tuple[float, float]] = field(default_factory=dict, repr=False)
    _counted: dict[str | None, int] = field(default_factory=dict, repr=False)
    _reported: dict[str | None, float] = field(default_factory=dict, repr=False)

    def take(self, gateway: str | None, now: float) -> bool:
        """Whether this refusal may have a row of its own (a token is taken if so)."""
        if gateway not in self._buckets and len(self._buckets) >= MAX_GATEWAYS:
            self._buckets.clear()  # topics naming ever new gateways: start afresh
        tokens, at = self._buckets.get(gateway, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[gateway] = (tokens - 1.0, now)
            return True
        self._buckets[gateway] = (tokens, now)
        return False

    def counted(self, gateway: str | None, n: int, now: float) -> int | None:
        """Note `n` refusals only counted; how many to report in a log line now, if it is
        time to (the first at once, then at most one line every `report_every` seconds)."""
        total = self._counted.get(gateway, 0) + n
        last = self._reported.get(gateway)
        if last is not None and now - last < self.report_every:
            self._counted[gateway] = total
            return None
        self._counted[gateway] = 0
        self._reported[gateway] = now
        return total
