"""Result bounds derived from the job: steps, returns and observation statistics."""

from __future__ import annotations

import numpy as np
import pytest
from esenas.spec import SpecError, check_dimensions, load_job, parse_spec
from esenas.spec_checks import MAX_OBS_DIM
from esenas_aggregator.bounds import ResultBounds
from esenas_aggregator.runtime import MAX_BATCH_ITEMS
from esenas_aggregator.service import MAX_REQUEST_BYTES
from esenas_api import wire
from esenas_api.v1 import aggregator_pb2 as pb


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


def test_observation_spaces_larger_than_the_request_limit_allows_are_refused_at_spec_check() -> None:
    spec = parse_spec({"environment": {"id": "Toy-v0"}})
    assert check_dimensions(spec, MAX_OBS_DIM, 6) == []
    errors = check_dimensions(spec, MAX_OBS_DIM + 1, 6)
    assert [(e.path, e.reason) for e in errors] == [
        ("spec.environment.id", f"the observation space has {MAX_OBS_DIM + 1} dimensions: at most 16000 are supported")
    ]
    # The largest request of an admitted job fits the transport's limit.
    n = MAX_BATCH_ITEMS
    full = pb.ExchangeRequest(
        worker_id="w" * 253, session=2**63 - 1, iteration=2**31, lease=2**64 - 1, max_items=n, wait_ms=30_000,
        held_session=2**63 - 1, held_version=2**31,
        results=wire.encode_results(np.arange(n), np.ones(n), np.ones(n), np.ones(n), np.zeros(n)),
        obs_stats=wire.encode_obs_stats(1.0, np.ones(MAX_OBS_DIM), np.ones(MAX_OBS_DIM)),
    )
    assert full.ByteSize() <= MAX_REQUEST_BYTES


def test_a_jobs_bounds_take_the_tasks_registered_episode_limit_when_it_sets_none() -> None:
    reacher = ResultBounds.of(parse_spec({"environment": {"id": "Reacher-v5"}}))
    assert reacher.max_episode_steps == 50  # as its workers' TimeLimit: a 51-step episode is refused
    bad = reacher.check(_records([-5.0, -5.0], [-5.0, -5.0], [100, 101]), np.zeros(2, np.uint8))
    assert bad["steps_bound"].tolist() == [False, True]
    assert ResultBounds.of(parse_spec({"environment": {"id": "Reacher-v5", "maxEpisodeSteps": 500}})).max_episode_steps == 500
