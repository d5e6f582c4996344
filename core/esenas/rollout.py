"""Rollouts on the worker side: build the environment once, run perturbed policies.

The :class:`Evaluator` rebuilds eps from each item's seed (Salimans et al. 2017), rolls out
theta + sigma*eps and theta - sigma*eps from the same start state (the env is reset with a
seed derived from the item, so both halves of a pair see the same start), subtracts the
reward shift per step from pair rewards (ARS, Mania et al. 2018), and sums observation
statistics for the ARS V2 normaliser. gymnasium is imported lazily: the operator never needs it.
The Gymnasium v5 MuJoCo tasks are stepped by esenas.native unless ``environment.stepper`` says
gymnasium: the same numbers (tests/unit/esenas/test_native_*.py), fewer CPU-seconds per step.

Actions of linear policies go to the environment unclipped, as in ARS: MuJoCo clamps controls
to their range and the control cost sees the raw action, which keeps them smooth (HalfCheetah-v5
ARS V2-t, 3 seeds: median 3,072 episodes to 3430 unclipped, 3,712 clipped). MLP actions are
clipped to the action space: a random H41 network emits large actions, and unclipped (or
tanh-squashed) its search collapsed into standing still to avoid the control cost.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from esenas import envload, native
from esenas.es import perturbation
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.results import KIND_PAIR, Results
from esenas.spec import EnvironmentSpec, JobSpec, SpecError, unsupported_actions
from esenas.topology import Topology

F64 = npt.NDArray[np.float64]


def make_env(env: EnvironmentSpec) -> Any:
    """The environment workers, tests and benches step: esenas.native's stepper when
    ``environment.stepper`` allows it and it covers the id and kwargs (the same numbers as
    Gymnasium, fewer CPU-seconds), else esenas.envload's Gymnasium environment."""
    return native.build(env, envload.make_env)


def env_dims(env: EnvironmentSpec | Any) -> tuple[int, int]:
    """(obs_dim, act_dim) of an environment or of an environment spec.

    Raises SpecError (field ``spec.environment.id``) when the actions are not a continuous Box,
    and EnvironmentUnavailable when the environment cannot be imported or built: this is where
    the aggregator and ``esenas run`` learn a task's sizes, before anything runs.
    """
    from gymnasium.spaces import Box

    e = make_env(env) if isinstance(env, EnvironmentSpec) else env
    try:
        space = e.action_space
        if not (isinstance(space, Box) and np.issubdtype(space.dtype, np.floating)):
            env_id = env.id if isinstance(env, EnvironmentSpec) else str(getattr(e.spec, "id", type(e).__name__))
            raise SpecError([unsupported_actions(env_id, str(space))])
        obs = int(np.prod(e.observation_space.shape))
        act = int(np.prod(e.action_space.shape))
    finally:
        if isinstance(env, EnvironmentSpec):
            e.close()
    return obs, act


def action_bounds(env: Any, policy: Policy) -> tuple[F64, F64] | None:
    """Where this policy's actions are clipped: the action space for MLPs, nowhere for linear."""
    if policy.arch.spec.template != "mlp":
        return None
    return np.asarray(env.action_space.low, np.float64), np.asarray(env.action_space.high, np.float64)


def rollout(env: Any, policy: Policy, seed: int, obs_buf: F64 | None = None) -> tuple[float, int, F64 | None]:
    """One episode: (total reward, steps, observations seen or None)."""
    bounds = action_bounds(env, policy)
    act, step, maximum, minimum = policy.act, env.step, np.maximum, np.minimum
    obs, _ = env.reset(seed=seed)
    total, steps = 0.0, 0
    while True:
        if obs_buf is not None:
            obs_buf[steps] = obs
        # minimum(maximum(a, low), high) is np.clip's result (NaN stays NaN) at a third of its cost
        action = act(obs) if bounds is None else minimum(maximum(act(obs), bounds[0]), bounds[1])
        obs, reward, terminated, truncated, _ = step(action)
        total += float(reward)
        steps += 1
        if terminated or truncated or (obs_buf is not None and steps >= obs_buf.shape[0]):
            break
    return total, steps, None if obs_buf is None else obs_buf[:steps]


class Evaluator:
    """Worker-side rollouts for a job: ``set_plan`` once per parameter version, then ``run``."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.env = make_env(spec.environment)
        self.obs_dim, self.act_dim = env_dims(self.env)
        self.arch = Architecture(spec.policy, self.obs_dim, self.act_dim)
        self._buf = np.zeros((spec.environment.max_episode_steps, self.obs_dim))
        self.params: F64 = np.zeros(self.arch.num_params)
        self.obs_mean: F64 = np.zeros(self.obs_dim)
        self.obs_std: F64 = np.ones(self.obs_dim)
        self.sigma = spec.es.sigma
        #: By the items' topology index: a list (in-process), or the dict a worker fills as
        #: replies bring the topologies of their items (shared, not copied).
        self.topologies: Mapping[int, Topology] | Sequence[Topology] = []
        self._exact_seed = 0

    def set_plan(
        self,
        params: npt.ArrayLike,
        obs_mean: npt.ArrayLike,
        obs_std: npt.ArrayLike,
        sigma: float,
        topologies: Mapping[int, Topology] | Sequence[Topology],
    ) -> None:
        self.params = np.asarray(params, np.float32).astype(np.float64)
        if self.params.size != self.arch.num_params:
            raise ValueError(f"params: expected {self.arch.num_params} numbers, got {self.params.size}")
        self.obs_mean = np.asarray(obs_mean, np.float64)
        self.obs_std = np.asarray(obs_std, np.float64)
        self.sigma = float(sigma)
        self.topologies = topologies if isinstance(topologies, Mapping) else list(topologies)
        # exact evals carry no seed: derive their start states from the parameters
        self._exact_seed = zlib.crc32(np.asarray(params, np.float32).tobytes())

    def _policy(self, params: F64, topo: Topology) -> Policy:
        return Policy(self.arch, topo, params, self.obs_mean, self.obs_std)

    def _run_one(self, params: F64, topo: Topology, seed: int, stats: list[F64]) -> tuple[float, int]:
        collect = self.spec.es.observation_normalization
        total, steps, seen = rollout(
            self.env, self._policy(params, topo), seed, self._buf if collect else None
        )
        if seen is not None:
            stats[0] += seen.sum(axis=0)
            stats[1] += (seen * seen).sum(axis=0)
        return total, steps

    def run(self, items: np.ndarray) -> Results:
        """Roll out the given items (ITEM_DTYPE) and return their Results."""
        n = items.size
        pos, neg = np.zeros(n), np.full(n, np.nan)
        steps = np.zeros(n, np.uint32)
        stats = [np.zeros(self.obs_dim), np.zeros(self.obs_dim)]
        count = 0
        shift = self.spec.es.reward_shift
        for i, it in enumerate(items):
            topo = self.topologies[int(it["topology"])]
            if int(it["kind"]) == KIND_PAIR:
                seed = int(it["seed"])
                eps = self.sigma * perturbation(seed, self.params.size)
                env_seed = seed % 2**31
                rp, sp = self._run_one(self.params + eps, topo, env_seed, stats)
                rn, sn = self._run_one(self.params - eps, topo, env_seed, stats)
                pos[i], neg[i], steps[i] = rp - shift * sp, rn - shift * sn, sp + sn
            else:
                env_seed = (self._exact_seed + int(it["index"]) * 7919) % 2**31
                pos[i], s0 = self._run_one(self.params, topo, env_seed, stats)
                steps[i] = s0
            count += int(steps[i])
        if not self.spec.es.observation_normalization:
            count = 0
        return Results(items["index"].astype(np.uint32), pos, neg, steps, float(count), stats[0], stats[1])

    def close(self) -> None:
        self.env.close()


def evaluate_policy(policy: Policy, env_spec: EnvironmentSpec, episodes: int, seed: int = 0) -> list[float]:
    """Rewards of ``episodes`` fresh episodes of a fixed policy (no shift, no noise)."""
    env = make_env(env_spec)
    try:
        return [rollout(env, policy, seed + k)[0] for k in range(episodes)]
    finally:
        env.close()
