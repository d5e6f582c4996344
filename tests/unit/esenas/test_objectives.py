"""Multi-objective: reward traded against size, robust to negative rewards; the Pareto front."""

from __future__ import annotations

import numpy as np
import pytest
from esenas.objectives import ParetoFront, combine
from esenas.spec import ObjectivesSpec


@pytest.mark.parametrize("method", ["mnasnet", "linear"])
def test_bigger_is_never_better_for_any_sign_of_reward(method: str) -> None:
    spec = ObjectivesSpec(size_weight=0.5, target_size=10, size_method=method)
    for r in (500.0, -500.0):
        small, big = combine([r, r], [5, 40], spec)
        assert small > big, (method, r)
    assert combine([100.0], [10], spec)[0] == pytest.approx(100.0)  # at the target: plain reward


def test_reward_only_when_size_weight_is_zero() -> None:
    r = np.array([3.0, -2.0])
    assert np.array_equal(combine(r, [1, 1000], ObjectivesSpec()), r)


def test_pareto_front_keeps_only_non_dominated_points() -> None:
    front = ParetoFront()
    front.update([10.0, 8.0, 12.0, 7.0], [5, 3, 9, 4], [{}, {}, {}, {}])
    assert front.summary() == [
        {"reward": 8.0, "size": 3},
        {"reward": 10.0, "size": 5},
        {"reward": 12.0, "size": 9},
    ]
    front.update([11.0], [3], [{}])  # dominates the size-3 and size-5 points
    assert front.summary() == [{"reward": 11.0, "size": 3}, {"reward": 12.0, "size": 9}]
