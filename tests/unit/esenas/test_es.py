"""ES maths: seed-rebuilt perturbations, gradient estimates, shaping, top-b, step rules."""

from __future__ import annotations

import numpy as np
import pytest
from esenas import es


def test_perturbation_is_rebuilt_from_its_seed() -> None:
    a, b = es.perturbation(12345, 50), es.perturbation(12345, 50)
    assert np.array_equal(a, b)
    assert not np.allclose(a, es.perturbation(12346, 50))


@pytest.mark.parametrize("shaping", ["none", "zscore", "centered_ranks"])
def test_gradient_estimate_points_along_the_true_gradient_of_a_quadratic(shaping: str) -> None:
    dim, sigma, n = 20, 0.01, 400
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2.0, dim)
    target = rng.normal(size=dim)
    theta = np.zeros(dim)

    def reward(x: np.ndarray) -> float:  # maximised: a downward quadratic
        return float(-np.sum(a * (x - target) ** 2))

    seeds = rng.integers(1, 2**63, size=n, dtype=np.uint64)
    eps = es.perturbations(seeds, dim)
    r_pos = np.array([reward(theta + sigma * e) for e in eps])
    r_neg = np.array([reward(theta - sigma * e) for e in eps])
    g = es.gradient(eps, r_pos, r_neg, shaping)
    true = -2 * a * (theta - target)
    cos = g @ true / (np.linalg.norm(g) * np.linalg.norm(true))
    assert cos > 0.9


def test_centered_ranks_are_in_minus_half_half_and_ties_share() -> None:
    r = np.array([3.0, 1.0, 2.0, 2.0])
    u = es.centered_ranks(r)
    assert u.min() == -0.5 and u.max() == 0.5
    assert u[2] == u[3]
    assert u[0] > u[2] > u[1]


def test_zscore_of_equal_rewards_is_zero_not_nan() -> None:
    assert np.array_equal(es.zscore(np.full(6, 7.0)), np.zeros(6))


def test_top_directions_pick_the_largest_max_reward() -> None:
    rp = np.array([1.0, 9.0, 0.0, 3.0])
    rn = np.array([5.0, 0.0, 0.5, 2.0])
    assert es.top_directions(rp, rn, 2).tolist() == [0, 1]
    assert es.top_directions(rp, rn, 0).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_optimizer_ascends_and_round_trips(kind: str) -> None:
    opt = es.Optimizer(kind, 0.1, 3)
    p = opt.step(np.zeros(3), np.array([1.0, -2.0, 0.0]))
    assert p[0] > 0 > p[1] and p[2] == 0
    clone = es.Optimizer.from_state_dict(opt.state_dict())
    g = np.array([0.3, 0.1, -0.2])
    assert np.array_equal(opt.step(p, g), clone.step(p, g))
