"""Rate limits on password attempts (login and signing), per client address and per account,
kept in the process's memory (the `limits` library's moving window).

The lock-out (cloud.service_layer.accounts) is the durable defence shared by every process;
this one slows a flood early, before it costs a password hash per attempt.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

PER_CLIENT = "30/minute"
PER_ACCOUNT = "10/minute"


class Throttle:
    """Allows an attempt unless its client or its account made too many lately."""

    def __init__(self, per_client: str = PER_CLIENT, per_account: str = PER_ACCOUNT):
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._client: RateLimitItem = parse(per_client)
        self._account: RateLimitItem = parse(per_account)

    def attempt(self, action: str, client: str, account: str) -> float | None:
        """None if the attempt may go ahead (and count it), else the seconds to wait."""
        limits = ((self._client, ("client", client)), (self._account, ("account", account)))
        for item, (kind, key) in limits:
            if not self._limiter.test(item, action, kind, key):
                reset = self._limiter.get_window_stats(item, action, kind, key).reset_time
                return max(1.0, math.ceil(reset - time.time()))
        for item, (kind, key) in limits:
            self._limiter.hit(item, action, kind, key)
        return None
