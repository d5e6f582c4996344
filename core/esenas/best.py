"""What a run has found, judged on evaluated scores only, and when it stops.

* :class:`Incumbent`: the topology whose *latest* evaluation scored best. Every new evaluation
  of it replaces its score, so one lucky iteration is demoted as soon as a fresh evaluation
  disagrees. With exact evals half of every iteration's re-score it under the current weights,
  as ENAS picks its final architecture from fresh scores under the shared weights (Pham et al.
  2018, section 2.2); the others each sample a topology, which can take the title on one
  episode but becomes the best policy only once re-scored (:func:`incumbent_evals`).
* :func:`best_evaluated`: the iteration's evaluated policy with the highest reward of its own.
  A saved policy's reward, ``bestReward`` and the ``targetReward`` check are that number, never a
  mean over evaluations of other topologies or of other weights.
* :func:`stop_reason`: the spec's stopping rules; :func:`scheduled_step_size`: the step size as the budget
  they set is used.

Reward is maximised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from esenas.es import perturbation
from esenas.results import KIND_PAIR, Plan, Results
from esenas.sampling import BlockSampler, SampledTable
from esenas.spec import JobSpec, StoppingSpec
from esenas.topology import Topology, group_by_topology

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def means_by_index(index: I64, values: F64, k: int) -> tuple[I64, F64]:
    """The indices in [0, k) that occur in ``index`` and the mean of ``values`` at each."""
    counts = np.bincount(index, minlength=k)
    seen = np.flatnonzero(counts)
    return seen, np.bincount(index, weights=values, minlength=k)[seen] / counts[seen]


@dataclass
class Incumbent:
    """The topology rated best on its latest evaluated score (None before any evaluation)."""

    topology: Topology | None = None
    score: float = -math.inf

    def update(self, topologies: Sequence[Topology], index: I64, scores: F64, keep_unseen: bool = True) -> None:
        """One iteration's evaluations: ``scores[i]`` is an evaluation of ``topologies[index[i]]``.

        The incumbent, if evaluated, takes its new mean score first; then the best-scoring
        topology of the iteration replaces it if it scored higher. An incumbent not evaluated
        keeps its latest score only with ``keep_unseen``; without, it gives way to the
        iteration's best: when nothing re-scores it each iteration (no exact evals), a score of
        older weights would hold the title for good while the weights move on under other
        topologies (Reacher-v5 with the linear defaults: the current weights under a stale
        incumbent fell to -1,600 while the population scored -9).
        """
        if scores.size == 0:
            return
        seen, means = means_by_index(index, scores, len(topologies))
        if self.topology is not None:
            mine, found = self.topology.key, False
            for j, i in enumerate(seen.tolist()):
                if topologies[i].key == mine:
                    self.score, found = float(means[j]), True
                    break
            if not found and not keep_unseen:
                self.topology, self.score = None, -math.inf
        j = int(np.argmax(means))
        if self.topology is None or means[j] > self.score:
            self.topology, self.score = topologies[int(seen[j])], float(means[j])

    def state_dict(self) -> dict[str, Any]:
        return {"topology": None if self.topology is None else self.topology.to_json(), "score": self.score}

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> Incumbent:
        t = d.get("topology")
        return cls(None if t is None else Topology.from_json(t), float(d["score"]))


def incumbent_evals(e: int) -> int:
    """How many of an iteration's ``e`` exact evals re-score the incumbent: half, rounded up. The
    rest each sample a topology, as the pairs do; a topology can become the best policy only on a
    mean over at least this many evaluations in one iteration (:func:`best_evaluated`)."""
    return (e + 1) // 2


def exact_table(
    n: int, e: int, incumbent: Topology | None, sampler: BlockSampler | None,
    ask: Callable[[], list[Topology]], measure: Callable[[Sequence[Topology]], I64],
) -> tuple[Sequence[Topology], I64, I64 | None, list[Topology]]:
    """An iteration's topology table for ``n`` pairs and ``e`` exact evals, the first
    :func:`incumbent_evals` of which re-score the ``incumbent`` (when there is one): the table,
    each item's index in it, and with a block ``sampler`` each entry's sample position (-1: the
    incumbent); else (``ask`` draws the n + e topologies) the topology of every item."""
    k = incumbent_evals(e) if incumbent is not None else 0
    if sampler is None:
        topos = ask()
        topos[n : n + k] = [incumbent] * k  # type: ignore[list-item]
        table, index = group_by_topology(topos)
        return table, index, None, topos
    # item p uses table entry p: sample p, drawn when first needed
    overrides = {n + i: incumbent for i in range(k) if incumbent is not None}
    position = np.arange(n + e, dtype=np.int64)
    position[n : n + k] = -1  # not a sample
    return SampledTable(sampler, overrides, measure=measure), np.arange(n + e, dtype=np.int64), position, []


@dataclass(frozen=True)
class Evaluated:
    """One policy that was really rolled out, and its own raw (unshifted) reward: over the plan's
    items at ``rows``, the mean of their exact evals (``sign`` 0) or that half of their one pair."""

    topology: Topology
    params: F64
    reward: float
    rows: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    sign: int = 0


@dataclass(frozen=True)
class Claim:
    """A new best as one iteration's results report it, and what rolls it out again.

    A rollout is a function of its item, the plan's weights, normaliser and topology
    (:class:`esenas.rollout.Evaluator`), so an aggregator that does not take its workers' word
    replays ``items`` before it adopts the best (``esenas_aggregator.confirm``): a worker holding
    the token cannot set ``bestReward``, the saved policy or the ``targetReward`` stop by lying.
    ``items`` use topology 0, ``found.topology``; ``reported`` are their results as they came in.
    """

    found: Evaluated
    policy: dict[str, Any]
    items: np.ndarray
    reported: Results
    centre: npt.NDArray[np.float32]
    obs_mean: npt.NDArray[np.float32]
    obs_std: npt.NDArray[np.float32]
    sigma: float
    shift: float
    max_steps: int

    @classmethod
    def of(cls, found: Evaluated, policy: dict[str, Any], plan: Plan, r: Results, shift: float, max_steps: int) -> Claim:
        rows = found.rows
        items = plan.items[rows].copy()
        items["topology"] = 0
        reported = Results(r.index[rows], r.reward_pos[rows], r.reward_neg[rows], r.steps[rows])
        return cls(found, policy, items, reported, plan.params, plan.obs_mean, plan.obs_std, plan.sigma, shift, max_steps)

    @property
    def reward(self) -> float:
        return self.found.reward

    def reward_of(self, r: Results) -> float:
        """The claimed policy's own reward on ``r``, results of :attr:`items` (as ``best_evaluated`` scores it)."""
        if self.found.sign == 0:
            return float(np.mean(r.reward_pos))
        pos, neg = rollout_rewards(r, np.ones(len(r), bool), self.shift, self.max_steps)
        return float(pos[0] if self.found.sign > 0 else neg[0])


def rollout_rewards(r: Results, pair: npt.NDArray[np.bool_], shift: float, max_steps: int) -> tuple[F64, F64]:
    """Raw rewards of the + and - rollouts of every pair, never above what they really scored.

    A pair reports the shifted rewards of its two rollouts but only their total steps, so each
    rollout's steps, and with a reward shift its raw reward, is known only within a range. Each
    gets the fewest steps (shift > 0) or the most (shift < 0) it can have had: exact when the
    shift is 0 or both rollouts ran the full ``max_steps``, a lower bound otherwise.
    """
    rp, rn, steps = r.reward_pos[pair], r.reward_neg[pair], r.steps[pair].astype(np.float64)
    if shift == 0:
        return rp.copy(), rn.copy()
    lo, hi = np.maximum(1.0, steps - max_steps), np.minimum(float(max_steps), steps - 1.0)
    own = lo if shift > 0 else hi
    return rp + shift * own, rn + shift * own


def best_evaluated(
    plan: Plan, topos: Sequence[Topology], r: Results, shift: float, max_steps: int, min_evals: int = 1
) -> Evaluated | None:
    """The iteration's evaluated policy with the highest own reward.

    With exact evals: the centre theta (the unperturbed weights the exact evals rolled out) under
    the topology whose exact evals have the highest mean, among those evaluated at least
    ``min_evals`` times (each topology's mean is over its own evaluations only); None when none
    was. A topology sampled once is never the best on that one episode: on PointMass (random
    goals) one lucky episode of 186 held the title for a policy that scores -40 on new episodes.
    Without: the perturbed weights theta +/- sigma*eps of the single best rollout, under its
    pair's topology. ``topos[i]`` is item i's topology and ``r`` is sorted by item index.
    """
    pair = plan.items["kind"] == KIND_PAIR
    centre = plan.params.astype(np.float64)
    if not pair.all():
        exact = np.flatnonzero(~pair)
        tidx = plan.items["topology"][exact].astype(np.int64)
        seen, means = means_by_index(tidx, r.reward_pos[exact], len(plan.topologies))
        means[np.bincount(tidx)[seen] < min_evals] = -np.inf
        j = int(np.argmax(means))
        if not np.isfinite(means[j]):
            return None
        return Evaluated(plan.topologies[int(seen[j])], centre, float(means[j]), exact[tidx == seen[j]], 0)
    if not pair.any():
        return None
    pos, neg = rollout_rewards(r, pair, shift, max_steps)
    both = np.concatenate([pos, neg])
    j = int(np.argmax(both))
    item = int(np.flatnonzero(pair)[j % pos.size])
    sign = 1.0 if j < pos.size else -1.0
    eps = perturbation(int(plan.items["seed"][item]), centre.size)
    return Evaluated(topos[item], centre + sign * plan.sigma * eps, float(both[j]), np.array([item]), int(sign))


def budget_used(s: StoppingSpec, iteration: int, env_steps: int, episodes: int) -> float:
    """How much of the stopping budget is spent, 0 to 1: the largest share of the iteration,
    env-step and episode limits that are set (a target reward or a deadline has no share)."""
    shares = [iteration / s.max_iterations]
    if s.max_env_steps is not None:
        shares.append(env_steps / s.max_env_steps)
    if s.max_episodes is not None:
        shares.append(episodes / s.max_episodes)
    return min(1.0, max(shares))


def scheduled_step_size(spec: JobSpec, iteration: int, env_steps: int, episodes: int) -> float:
    """``es.stepSize`` under ``es.stepSizeEndFraction``'s schedule: falling linearly to that
    fraction of itself as the budget is used (:func:`budget_used`)."""
    used = budget_used(spec.stopping, iteration, env_steps, episodes)
    return spec.es.step_size * (1.0 - (1.0 - spec.es.step_size_end_fraction) * used)


def stop_reason(
    s: StoppingSpec, best_reward: float, iteration: int, env_steps: int, episodes: int, elapsed: float
) -> str:
    """Why the run stops now per the stopping rules, or '' to go on (the first rule met wins)."""
    if s.target_reward is not None and best_reward >= s.target_reward:
        return f"target reward {s.target_reward:g} reached ({best_reward:.1f})"
    if iteration >= s.max_iterations:
        return f"max iterations {s.max_iterations} reached"
    if s.max_env_steps is not None and env_steps >= s.max_env_steps:
        return f"max env steps {s.max_env_steps} reached"
    if s.max_episodes is not None and episodes >= s.max_episodes:
        return f"max episodes {s.max_episodes} reached"
    if s.deadline_seconds is not None and elapsed >= s.deadline_seconds:
        return f"deadline of {s.deadline_seconds} s reached"
    return ""
