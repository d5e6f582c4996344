"""Rollouts on the worker side: build the environment once, run perturbed policies.

The :class:`Evaluator` rebuilds eps from each item's seed (Salimans et al. 2017), rolls out
theta + sigma*eps and theta - sigma*eps from the same start state (the env is reset with a
seed derived from the item, so both halves of a pair see the same start), subtracts the
reward shift per step from pair rewards (ARS, Mania et al. 2018), and sums observation
statistics for the ARS V2 normaliser. The two halves of a pair step side by side on two
environments with one batched forward pass (``rollout_pair``): the same episodes as two plain
rollouts, 6-10% more env steps per CPU-second (bench/throughput.py's ``lockstep_gain``). gymnasium is imported lazily: the operator never needs it.
The Gymnasium v5 MuJoCo tasks are stepped by esenas.native unless ``environment.stepper`` says
gymnasium: the same numbers (tests/unit/esenas/test_native_*.py), fewer CPU-seconds per step.

Actions of linear policies go to the environment unclipped by default, as in ARS: MuJoCo clamps
controls to their range and the control cost sees the raw action, which keeps them smooth
(HalfCheetah-v5 ARS V2-t, 3 seeds: median 3,072 episodes to 3430 unclipped, 3,712 clipped). MLP
actions are clipped to the action space: a random H41 network emits large actions, and unclipped
(or tanh-squashed) its search collapsed into standing still to avoid the control cost.
``policy.clipActions`` chooses; its default is by template and task (esenas.es_defaults).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from esenas import envload, native
from esenas.es import perturbation
from esenas.hang import time_limit
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

    Raises SpecError (field ``spec.environment.id``) when the actions are not a flat float Box
    (``make_env`` adapts every space it can, :mod:`esenas.spaces`), and EnvironmentUnavailable
    when the environment cannot be imported, built, reset or stepped (esenas.envload.first_step):
    this is where the aggregator and ``esenas run`` learn a task's sizes, before anything runs.
    """
    from gymnasium.spaces import Box

    e = make_env(env) if isinstance(env, EnvironmentSpec) else env
    try:
        space = e.action_space
        if not (isinstance(space, Box) and np.issubdtype(space.dtype, np.floating) and len(space.shape) == 1):
            env_id = env.id if isinstance(env, EnvironmentSpec) else str(getattr(e.spec, "id", type(e).__name__))
            raise SpecError([unsupported_actions(env_id, str(space))])
        if isinstance(env, EnvironmentSpec):
            envload.first_step(e, env)
        obs = int(np.prod(e.observation_space.shape))
        act = int(np.prod(e.action_space.shape))
    finally:
        if isinstance(env, EnvironmentSpec):
            e.close()
    return obs, act


def action_bounds(env: Any, policy: Policy) -> tuple[F64, F64] | None:
    """Where this policy's actions are clipped: the action space when ``policy.clipActions`` (an
    mlp's default), else nowhere; never the unbounded scores of a discrete task."""
    if not policy.arch.spec.clip_actions:
        return None
    low, high = np.asarray(env.action_space.low, np.float64), np.asarray(env.action_space.high, np.float64)
    if np.isinf(low).all() and np.isinf(high).all():  # scores (esenas.spaces): nothing to clip
        return None
    return low, high


def rollout(env: Any, policy: Policy, seed: int, obs_buf: F64 | None = None) -> tuple[float, int, F64 | None]:
    """One episode: (total reward, steps, observations seen or None)."""
    obs, _ = env.reset(seed=seed)
    return _finish(env, policy, obs, 0.0, 0, obs_buf)


def _finish(
    env: Any, policy: Policy, obs: F64, total: float, steps: int, obs_buf: F64 | None
) -> tuple[float, int, F64 | None]:
    """Step ``env`` from ``obs`` (``steps`` steps and ``total`` reward so far) to the episode's end."""
    bounds = action_bounds(env, policy)
    act, step, maximum, minimum = policy.act, env.step, np.maximum, np.minimum
    limit = None if obs_buf is None else obs_buf.shape[0]
    while True:
        if obs_buf is not None:
            obs_buf[steps] = obs
        # minimum(maximum(a, low), high) is np.clip's result (NaN stays NaN) at a third of its cost
        action = act(obs) if bounds is None else minimum(maximum(act(obs), bounds[0]), bounds[1])
        obs, reward, terminated, truncated, _ = step(action)
        total += float(reward)
        steps += 1
        if terminated or truncated or steps == limit:
            break
    return total, steps, None if obs_buf is None else obs_buf[:steps]


class PairPolicy:
    """The two halves of an antithetic pair (theta + sigma*eps, theta - sigma*eps), evaluated in
    lockstep: one batched forward pass ``act(obs2)`` for their two observations (2, obs_dim).

    On a chain (the chromatic, edge and dense spaces) each layer's two matrices are stacked and
    one ``matmul`` of (2, 1, in) by (2, in, out) replaces two products, which is each half's own
    ``x @ W.T + b``: measured on the poster's H41/17 at HalfCheetah's sizes, 21 us for the pair
    against 29 us for two ``Policy.act`` calls. Other networks (residual spaces) call each half.
    """

    def __init__(self, pos: Policy, neg: Policy) -> None:
        self.pos, self.neg = pos, neg
        self.obs_mean, self.inv_std = pos.obs_mean, pos._inv_std
        self._chain: list[tuple[F64, F64]] | None = None
        if pos._chain is not None and neg._chain is not None:
            self._chain = [
                (np.stack((wp, wn)), np.stack((bp, bn))[:, None, :])
                for (wp, bp), (wn, bn) in zip(pos._chain, neg._chain, strict=True)
            ]

    def act(self, obs2: F64) -> F64:
        if self._chain is None:
            return np.stack((self.pos.act(obs2[0]), self.neg.act(obs2[1])))
        x = ((obs2 - self.obs_mean) * self.inv_std)[:, None, :]
        last = len(self._chain) - 1
        for k, (w, b) in enumerate(self._chain):
            x = x @ w + b if k == last else np.tanh(x @ w + b)
        return x[:, 0, :]


def rollout_pair(
    envs: Sequence[Any], pair: PairPolicy, seed: int, obs_bufs: F64 | None = None
) -> tuple[tuple[float, int, F64 | None], tuple[float, int, F64 | None]]:
    """Both halves of a pair from the same start state (``seed``), stepped side by side on two
    environments until one episode ends; the other then finishes alone. Each half's reward, steps
    and observations are those of ``rollout`` with its own policy; ``obs_bufs`` (2, T, obs_dim)
    receives each half's observations."""
    e0, e1 = envs
    bounds = action_bounds(e0, pair.pos)
    act, s0, s1, maximum, minimum = pair.act, e0.step, e1.step, np.maximum, np.minimum
    obs = np.stack((e0.reset(seed=seed)[0], e1.reset(seed=seed)[0]))
    b0, b1 = (None, None) if obs_bufs is None else obs_bufs
    limit = None if b0 is None else b0.shape[0]
    t0 = t1 = 0.0
    steps = 0
    while True:
        if b0 is not None and b1 is not None:
            b0[steps] = obs[0]
            b1[steps] = obs[1]
        a = act(obs) if bounds is None else minimum(maximum(act(obs), bounds[0]), bounds[1])
        o0, r0, term0, trunc0, _ = s0(a[0])
        o1, r1, term1, trunc1, _ = s1(a[1])
        t0 += float(r0)
        t1 += float(r1)
        steps += 1
        end0, end1 = term0 or trunc0 or steps == limit, term1 or trunc1 or steps == limit
        if end0 or end1:
            break
        obs[0] = o0
        obs[1] = o1
    first = (t0, steps, None if b0 is None else b0[:steps])
    second = (t1, steps, None if b1 is None else b1[:steps])
    if not end0:
        first = _finish(e0, pair.pos, o0, t0, steps, b0)
    if not end1:
        second = _finish(e1, pair.neg, o1, t1, steps, b1)
    return first, second


class Evaluator:
    """Worker-side rollouts for a job: ``set_plan`` once per parameter version, then ``run``."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.env = make_env(spec.environment)
        self.obs_dim, self.act_dim = env_dims(self.env)
        #: the pair's second half steps here, in lockstep with ``env`` (see ``rollout_pair``)
        self.twin = make_env(spec.environment)
        self.arch = Architecture(spec.policy, self.obs_dim, self.act_dim)
        self._bufs = np.zeros((2, envload.episode_limit(spec.environment), self.obs_dim))
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

    def _collect(self, seen: F64 | None, stats: list[F64]) -> None:
        if seen is not None:
            stats[0] += seen.sum(axis=0)
            stats[1] += (seen * seen).sum(axis=0)

    def _run_pair(self, eps: F64, topo: Topology, seed: int, stats: list[F64]) -> tuple[float, int, float, int]:
        pair = PairPolicy(self._policy(self.params + eps, topo), self._policy(self.params - eps, topo))
        bufs = self._bufs if self.spec.es.observation_normalization else None
        (rp, sp, seen_p), (rn, sn, seen_n) = rollout_pair((self.env, self.twin), pair, seed, bufs)
        self._collect(seen_p, stats)
        self._collect(seen_n, stats)
        return rp, sp, rn, sn

    def _run_one(self, params: F64, topo: Topology, seed: int, stats: list[F64]) -> tuple[float, int]:
        collect = self.spec.es.observation_normalization
        total, steps, seen = rollout(self.env, self._policy(params, topo), seed, self._bufs[0] if collect else None)
        self._collect(seen, stats)
        return total, steps

    def run(self, items: np.ndarray, limit_s: float | None = None) -> Results:
        """Roll out the given items (ITEM_DTYPE) and return their Results; an item whose rollout
        runs past ``limit_s`` raises RolloutTimeout where it was (esenas.hang)."""
        n = items.size
        pos, neg = np.zeros(n), np.full(n, np.nan)
        steps = np.zeros(n, np.uint32)
        stats = [np.zeros(self.obs_dim), np.zeros(self.obs_dim)]
        count = 0
        shift = self.spec.es.reward_shift
        for i, it in enumerate(items):
            topo = self.topologies[int(it["topology"])]
            with time_limit(limit_s):
                if int(it["kind"]) == KIND_PAIR:
                    seed = int(it["seed"])
                    eps = self.sigma * perturbation(seed, self.params.size)
                    env_seed = seed % 2**31
                    rp, sp, rn, sn = self._run_pair(eps, topo, env_seed, stats)
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
        self.twin.close()


def evaluate_policy(policy: Policy, env_spec: EnvironmentSpec, episodes: int, seed: int = 0) -> list[float]:
    """Rewards of ``episodes`` fresh episodes of a fixed policy (no shift, no noise)."""
    return list(episode_rewards(policy, env_spec, episodes, seed))


def episode_rewards(policy: Policy, env_spec: EnvironmentSpec, episodes: int, seed: int = 0) -> Iterator[float]:
    """:func:`evaluate_policy`'s rewards one episode at a time, for a caller that shows progress."""
    env = make_env(env_spec)
    try:
        for k in range(episodes):
            yield rollout(env, policy, seed + k)[0]
    finally:
        env.close()
