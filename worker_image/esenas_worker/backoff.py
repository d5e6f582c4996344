"""Exponential back-off with jitter for reconnecting to the aggregator.

"Equal jitter": the n-th wait is half of min(cap, base * 2**n) plus a uniform random part
of the other half, so a fleet that lost its aggregator does not reconnect in lock-step.
"""

from __future__ import annotations

import random


class Backoff:
    """Successive delays for failed attempts; ``reset()`` after a success."""

    def __init__(self, base: float = 0.1, cap: float = 10.0, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff: need 0 < base <= cap, got base={base}, cap={cap}")
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt; grows until ``cap``."""
        ceiling = min(self.cap, self.base * 2.0 ** min(self.failures, 62))
        self.failures += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0
