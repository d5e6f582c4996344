"""Lockstep pairs: both antithetic halves stepped side by side give each half's own rollout.

``rollout_pair`` batches the two halves' forward pass (one stacked ``matmul`` per layer) and steps
two environments; a half whose episode ends first stops, the other finishes alone. Against two
plain ``rollout`` calls from the same seed, the steps and observations are the same and the
rewards agree to 1e-9 (the stacked product may take another BLAS kernel than the single one, so
the last bits of an action may differ; on this machine they are identical).
"""

from __future__ import annotations

import numpy as np
import pytest
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.rollout import PairPolicy, make_env, rollout, rollout_pair
from esenas.spec import EnvironmentSpec, PolicySpec

SPACES = [
    PolicySpec(template="linear", topology="dense"),
    PolicySpec(template="mlp", hidden_layers=(41,), topology="partition", partitions=17),
    PolicySpec(template="mlp", hidden_layers=(8, 8), topology="edges", edges=20),
    PolicySpec(template="mlp", hidden_layers=(8,), topology="edges", edges=12, search_space="residual_edges"),
]


def _pair(spec: PolicySpec, obs_dim: int, act_dim: int, seed: int, scale: float) -> tuple[Policy, Policy]:
    rng = np.random.default_rng(seed)
    arch = Architecture(spec, obs_dim, act_dim)
    space = arch.search_space()
    topo = space.sample(rng) if space.choices.size else arch.default_topology()
    theta, eps = rng.normal(size=arch.num_params) * scale, rng.normal(size=arch.num_params) * scale
    mean, std = rng.normal(size=obs_dim) * 0.1, rng.uniform(0.5, 2.0, obs_dim)
    return Policy(arch, topo, theta + eps, mean, std), Policy(arch, topo, theta - eps, mean, std)


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5", "MountainCarContinuous-v0"])
@pytest.mark.parametrize("spec", SPACES, ids=lambda s: f"{s.template}-{s.topology}-{s.search_space}")
def test_a_lockstep_pair_is_its_two_rollouts(env_id: str, spec: PolicySpec) -> None:
    env_spec = EnvironmentSpec(env_id, max_episode_steps=120)
    envs = (make_env(env_spec), make_env(env_spec))
    obs_dim, act_dim = envs[0].observation_space.shape[0], envs[0].action_space.shape[0]
    lengths = set()
    try:
        for seed in range(4):
            pos, neg = _pair(spec, obs_dim, act_dim, seed, scale=0.3 + 0.4 * seed)
            bufs = np.zeros((2, 120, obs_dim))
            got = rollout_pair(envs, PairPolicy(pos, neg), 1000 + seed, bufs)
            for (total, steps, seen), policy in zip(got, (pos, neg), strict=True):
                want_total, want_steps, want_seen = rollout(envs[0], policy, 1000 + seed, np.zeros((120, obs_dim)))
                assert steps == want_steps and seen is not None and want_seen is not None
                np.testing.assert_array_equal(seen, want_seen)
                np.testing.assert_allclose(total, want_total, rtol=1e-9, atol=1e-9)
                lengths.add(steps)
            without = rollout_pair(envs, PairPolicy(pos, neg), 1000 + seed)
            assert [w[:2] for w in without] == [g[:2] for g in got] and without[0][2] is None
    finally:
        for e in envs:
            e.close()
    if env_id == "Hopper-v5":
        assert len(lengths) > 1  # halves that end at different steps were exercised


def test_the_stacked_forward_pass_is_each_halfs_own() -> None:
    rng = np.random.default_rng(5)
    for spec in SPACES:
        pos, neg = _pair(spec, 17, 6, 1, scale=1.0)
        obs2 = rng.normal(size=(2, 17))
        both = PairPolicy(pos, neg)
        assert (both._chain is None) == (spec.search_space == "residual_edges")
        np.testing.assert_allclose(both.act(obs2), np.stack((pos.act(obs2[0]), neg.act(obs2[1]))), rtol=0, atol=1e-12)
