"""Result bounds derived from the job: steps, returns and observation statistics."""

from __future__ import annotations

import numpy as np
import pytest
from esenas.spec import SpecError, load_job
from esenas_aggregator.bounds import ResultBounds
from esenas_api import wire


def _records(rp: list[float], rn: list[float], steps: list[int]) -> np.ndarray:
    n = len(rp)
    return wire.decode_results(wire.encode_results(np.arange(n), rp, rn, steps, np.zeros(n)))


def test_steps_and_returns_are_bounded_per_episode() -> None:
    b = ResultBounds(max_abs_reward=100.0, max_episode_steps=10)
    kinds = np.array([wire.KIND_PAIR, wire.KIND_PAIR, wire.KIND_EXACT, wire.KIND_EXACT, wire.KIND_PAIR, wire.KIND_PAIR], np.uint8)
    recs = _records([1, 1, 1, 1, 500, np.nan], [1, 1, np.nan, np.nan, 1, 1], [20, 21, 10, 11, 5, 5])
    bad = b.check(recs, kinds)
    assert bad["steps_bound"].tolist() == [False, True, False, True, False, False]
    assert bad["reward_bound"].tolist() == [False, False, False, False, True, False]  # NaN: the queue's nonfinite


def test_the_reward_shift_widens_the_bound_by_its_steps() -> None:
    b = ResultBounds(max_abs_reward=100.0, max_episode_steps=1000, reward_shift=1.0)
    recs = _records([-150.0, -1150.0], [0.0, 0.0], [100, 100])  # shifted by -1 per step: at most -200 here
    assert b.check(recs, np.zeros(2, np.uint8))["reward_bound"].tolist() == [False, True]


def test_observation_statistics_must_be_those_of_the_rollouts() -> None:
    b = ResultBounds(max_abs_reward=1e6, max_episode_steps=1000)
    x = np.random.default_rng(0).normal(size=(30, 3))
    honest = (30.0, x.sum(0), (x * x).sum(0))
    assert b.obs_problem(honest, 30) is None
    assert "count" in (b.obs_problem(honest, 31) or "")
    assert "beyond" in (b.obs_problem((2.0, np.full(3, 2e39), np.full(3, 4e78)), 2) or "")
    assert "inconsistent" in (b.obs_problem((10.0, np.full(3, 10.0), np.full(3, 1.0)), 10) or "")


def test_the_reward_bound_is_a_spec_field_with_a_clear_error() -> None:
    doc = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "j"},
           "spec": {"environment": {"id": "HalfCheetah-v5"}}}
    assert load_job(doc).spec.environment.max_abs_reward == 1e6
    doc["spec"]["environment"]["maxAbsReward"] = 5e4
    assert load_job(doc).spec.environment.max_abs_reward == 5e4
    doc["spec"]["environment"]["maxAbsReward"] = 0
    with pytest.raises(SpecError, match=r"spec\.environment\.maxAbsReward"):
        load_job(doc)
