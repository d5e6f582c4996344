"""Reconnect back-off: exponential, capped, jittered, reset on success."""

from __future__ import annotations

import random

import pytest
from esenas_worker.backoff import Backoff


def test_grows_exponentially_within_jitter_and_caps() -> None:
    b = Backoff(base=0.1, cap=2.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    ceilings = [min(2.0, 0.1 * 2**i) for i in range(8)]
    for d, c in zip(delays, ceilings, strict=True):
        assert c / 2 <= d <= c
    assert max(delays) <= 2.0
    b.reset()
    assert b.next_delay() <= 0.1


def test_jitter_spreads_a_fleet() -> None:
    firsts = {round(Backoff(base=1.0, cap=8.0, rng=random.Random(s)).next_delay(), 6) for s in range(50)}
    assert len(firsts) > 40


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="base"):
        Backoff(base=0.0)
