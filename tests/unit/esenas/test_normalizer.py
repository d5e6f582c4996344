"""Observation statistics merged from many workers equal the whole batch's statistics."""

from __future__ import annotations

import numpy as np
from esenas.normalizer import RunningStats


def test_merged_stats_equal_whole_batch_stats() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(3.0, 2.0, size=(1000, 5)) * np.array([1, 10, 0.1, 1, 100])
    parts = np.split(data, [7, 300, 301, 650])
    merged = RunningStats.zeros(5)
    for p in parts:
        merged = merged.merge(RunningStats.from_sums(len(p), p.sum(0), (p * p).sum(0)))
    assert merged.count == 1000
    np.testing.assert_allclose(merged.mean, data.mean(0), rtol=1e-10)
    np.testing.assert_allclose(merged.var, data.var(0, ddof=1), rtol=1e-8)


def test_constant_dimension_is_not_amplified() -> None:
    data = np.column_stack([np.arange(10.0), np.full(10, 4.0)])
    s = RunningStats.from_sums(10, data.sum(0), (data * data).sum(0))
    mean, std = s.mean_std()
    assert std[1] > 1e6  # (x - mean)/std ~ 0 for a dimension that never varies
    assert mean[1] == 4.0


def test_state_round_trip() -> None:
    s = RunningStats.from_sums(3, np.array([3.0, 6.0]), np.array([5.0, 14.0]))
    t = RunningStats.from_state_dict(s.state_dict())
    assert t.count == s.count and np.array_equal(t.mean, s.mean) and np.array_equal(t.m2, s.m2)
