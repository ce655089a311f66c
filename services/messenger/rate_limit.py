"""Per-sender rate limits. A message over the limit stays in the durable queue (it is never
dropped) and goes in a later cycle, in its turn."""

from __future__ import annotations

import time


class TokenBucket:
    """``rate`` messages per second with a burst of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.at = time.monotonic()

    def take(self, wanted: int) -> int:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted

    def wait_s(self) -> float:
        return max(0.0, (1 - self.tokens) / self.rate)
