"""ES-ENAS as ask/tell over explicit state (Song et al., arXiv 2101.07415, Algorithm 1).

Each iteration: the controller proposes one topology per antithetic perturbation pair
(plus one per exact eval); workers roll out theta +/- sigma*eps under those topologies;
``tell`` takes an ES step on the shared weights (ARS V2-t / OpenAI ES, see :mod:`esenas.es`)
and gives the controller the reward of every evaluation. Reward is maximised.

``ask`` is a pure function of the state (its randomness is derived from the job seed and
the iteration number), so asking twice gives the same plan and a run is deterministic
given ``spec.seed``; ``state_dict``/``from_state_dict`` round-trip the state exactly
(the format and the history's bound live in :mod:`esenas.state`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from esenas import envload, es, streams, trials
from esenas.best import (
    Claim,
    Incumbent,
    best_evaluated,
    exact_table,
    incumbent_evals,
    means_by_index,
    scheduled_step_size,
    stop_reason,
)
from esenas.controllers import Controller
from esenas.eps_cache import PerturbationCache
from esenas.feedback import StreamedScore
from esenas.network import Architecture
from esenas.normalizer import RunningStats
from esenas.objectives import ParetoFront, combine, front_indices
from esenas.policies import Policy
from esenas.results import (
    ITEM_DTYPE,
    KIND_EXACT,
    KIND_PAIR,
    Carried,
    IterationReport,
    Plan,
    Results,
)
from esenas.sampling import SampledTable
from esenas.spec import JobSpec
from esenas.state import MAX_HISTORY, STATE_FORMAT, load_state, spec_of, state_dict, thin_history
from esenas.topology import Topology

__all__ = ["ESENAS", "MAX_HISTORY", "STATE_FORMAT", "IterationReport", "Plan", "Results", "thin_history"]

_rng = streams.stream  # by name here, so a test can watch every stream this module draws


class ESENAS(PerturbationCache):
    """The whole optimiser: ES on shared weights plus the NAS controller."""

    # the trainable state: one trial's (esenas.trials.start)
    controller: Controller
    params: np.ndarray
    optimizer: es.Optimizer
    obs_stats: RunningStats
    incumbent: Incumbent

    def __init__(self, spec: JobSpec, obs_dim: int, act_dim: int) -> None:
        self.spec = spec
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.arch = Architecture(spec.policy, obs_dim, act_dim)
        self.space = self.arch.search_space()
        self.trials = trials.Trials(spec.trials.count, spec.trials.steps(spec.stopping.max_env_steps))
        trials.start(self, 0)
        self.iteration = 0
        self.version = 0
        self.env_steps = 0
        self.episodes = 0
        self.best_reward = -np.inf  # the saved best policy's own evaluated reward
        self.best: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        self.pareto = ParetoFront()
        self._elapsed_before = 0.0
        self._t0 = time.monotonic()
        self._plan: Plan | None = None
        self._plan_topos: list[Topology] = []
        self._eps: np.ndarray | None = None  # eps of the plan's first _eps_ready pairs
        self._eps_ready = 0
        self._feedback: StreamedScore | None = None
        self.claim: Claim | None = None  # a new best tell was not told to trust (see adopt)

    # ------------------------------------------------------------------ ask

    def obs_mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """The normaliser as workers get it, float32 like the plan's weights, so a policy built here acts
        as the rollouts did (on Humanoid-v5, float64 stats moved a feature of std 4e-7 by 0.6 std)."""
        if not self.spec.es.observation_normalization:
            return np.zeros(self.obs_dim, np.float32), np.ones(self.obs_dim, np.float32)
        mean, std = self.obs_stats.mean_std()
        return mean.astype(np.float32), std.astype(np.float32)

    def ask(self) -> Plan:
        """This iteration's work; the same plan until ``tell`` completes the iteration."""
        if self._plan is not None:
            return self._plan
        n, e = self.spec.es.perturbations, self.spec.es.exact_evals
        seeds = _rng(self.spec.seed, streams.PERTURBATION, self.iteration).integers(1, 2**63, size=n, dtype=np.uint64)
        g = _rng(self.spec.seed, streams.CONTROLLER, self.iteration)
        sampler = self.controller.sampler(n + e, rng=g)
        # half the exact evals re-score the incumbent, so a lucky score is demoted (esenas.best);
        # before there is one, the first topology, so that iteration 0 can already judge one
        incumbent = self.incumbent.topology or (self.current_topology() if self.space.num_decisions else None)
        topologies, topology_index, position, self._plan_topos = exact_table(
            n, e, incumbent, sampler, lambda: self.controller.ask(n + e, rng=g), self.arch.sizes
        )
        items = np.zeros(n + e, dtype=ITEM_DTYPE)
        items["index"] = np.arange(n + e)
        items["seed"][:n] = seeds
        items["topology"] = topology_index
        items["kind"][n:] = KIND_EXACT
        mean, std = self.obs_mean_std()
        self._eps, self._eps_ready, self._feedback = None, 0, None
        self._plan = Plan(
            iteration=self.iteration,
            version=self.version,
            params=self.params.astype(np.float32),
            obs_mean=mean,
            obs_std=std,
            sigma=self.spec.es.sigma,
            topologies=topologies,
            items=items,
            sampler=sampler,
            sample_position=position,
        )
        return self._plan

    # ------------------------------------------------------------------ tell

    def prefetch_topologies(self, max_blocks: int) -> bool:
        """Draw and group up to ``max_blocks`` more blocks of the plan's sampled topologies ahead
        of ``tell`` (:class:`~esenas.sampling.SampledTable`); True once all are (or none sample)."""
        table = self.ask().topologies
        return table.group(max_blocks) if isinstance(table, SampledTable) else True

    def prefetch_feedback(self, done: np.ndarray, reward_pos: np.ndarray, reward_neg: np.ndarray, steps: np.ndarray, max_items: int) -> bool:
        """Sum the controller's feedback (:mod:`esenas.feedback`) of up to ``max_items`` more of the
        items ``done`` marks, their rewards as given, once the topologies are grouped; True when
        there is nothing more to sum. ``tell`` checks what was summed against its results."""
        if self._feedback is None:
            if not self.prefetch_topologies(0):
                return False
            plan, s = self.ask(), self.spec
            b = self.controller.streamed_baseline()
            self._feedback = StreamedScore.start(plan.topologies, plan.items["kind"], s.objectives, s.es.reward_shift, b, self.space.max_choices)
        return self._feedback is None or self._feedback.add(done, reward_pos, reward_neg, steps, max_items)

    def _grouped_plan(self) -> tuple[Plan, list[Topology], np.ndarray]:
        """The plan with equal topologies as one table entry (what ``tell`` scores by), each item's
        topology, and the entries' sizes."""
        plan = self.ask()
        if not isinstance(plan.topologies, SampledTable):
            return plan, self._plan_topos, self.arch.sizes(plan.topologies)
        unique, index = plan.topologies.grouped()
        items = plan.items.copy()
        items["topology"] = index
        return dataclasses.replace(plan, topologies=unique, items=items), plan.topologies.all(), plan.topologies.sizes()

    def tell(self, results: Results, trust_best: bool = True, carried: Carried | None = None) -> IterationReport:
        """Apply the results of the current plan (any order) and advance: every item, or under
        the straggler policy (``es.minPairsFraction`` < 1) every exact eval and the pairs that
        arrived. Pairs left out count nowhere here; the aggregator hands those that arrive during
        the next iteration to its ``tell`` as ``carried``: they join that ES step (which divides by
        the pairs used) and the env-step totals, not the controller's feedback or the best policy.
        Without ``trust_best``, a new best is not adopted but left in :attr:`claim` (see :meth:`adopt`)."""
        full, topos, uniq_sizes = self._grouped_plan()
        r = results.checked(full, self.spec.es.min_pairs_fraction)
        kept = r.index.astype(np.int64)
        plan = full
        if kept.size != full.items.size:  # stragglers dropped: the plan of the items that arrived
            plan = dataclasses.replace(full, items=full.items[kept])
            topos = [topos[i] for i in kept.tolist()]
        pair = plan.items["kind"] == KIND_PAIR
        exact = ~pair
        shift = self.spec.es.reward_shift
        rp, rn, steps = r.reward_pos[pair], r.reward_neg[pair], r.steps[pair].astype(np.float64)

        # ES step on the shared weights (ARS V2-t top-b; shaping per spec), carried pairs after the plan's.
        c = carried if carried is not None and not self.trials.drop_carried else Carried(np.zeros(0, np.uint64), np.zeros(0), np.zeros(0), np.zeros(0, np.uint32))
        sp, sn = np.concatenate([rp, c.reward_pos]), np.concatenate([rn, c.reward_neg])
        sel = es.top_directions(sp, sn, es.top_count(self.spec.es.top_directions, sp.size))
        # Pairs are items 0..n-1 of the full plan, so a kept pair's index is its row of eps.
        eps = self._step_rows(full.items["seed"][full.items["kind"] == KIND_PAIR], kept[pair], sel, c)
        grad = es.gradient(eps, sp[sel], sn[sel], self.spec.es.fitness_shaping)
        self.optimizer.step_size = scheduled_step_size(self.spec, self.iteration, self.env_steps, self.episodes)
        self.params = self.optimizer.step(self.params, grad)
        for o in (r, c):
            if o.obs_count > 0:
                self.obs_stats = self.obs_stats.merge(RunningStats.from_sums(o.obs_count, o.obs_sum, o.obs_sumsq))

        # Raw (unshifted) rewards per rollout. A pair reports the steps of both its rollouts, so
        # each is credited half: exact for the pair's sum, approximate per rollout. Exact evals
        # are raw already.
        half = shift * steps / 2.0
        raw_pos, raw_neg, raw_exact = rp + half, rn + half, r.reward_pos[exact]
        rollouts = np.concatenate([raw_pos, raw_neg, raw_exact])
        eval_reward = float(raw_exact.mean()) if raw_exact.size else None
        reward_mean = float(rollouts.mean())
        score = eval_reward if eval_reward is not None else reward_mean

        # Controller feedback: every evaluation, with its topology; objective per spec.
        # Sizes and means go by the plan's unique-topology index, so a population of
        # 100,000 pairs costs whole-array operations, not one Python call per evaluation.
        tidx = plan.items["topology"].astype(np.int64)
        all_idx = np.concatenate([tidx[pair], tidx[pair], tidx[exact]])
        sizes = uniq_sizes[all_idx].astype(np.float64)
        fitness = combine(rollouts, sizes, self.spec.objectives)
        counts = None
        if kept.size == full.items.size:  # the sum streamed (or made now) when the controller's feedback can stream
            self.prefetch_feedback(np.zeros(kept.size, bool), r.reward_pos, r.reward_neg, r.steps, 0)
            counts = self._feedback.finish(r) if self._feedback is not None else None
        if counts is None or not self.controller.tell_streamed(counts, means_by_index(all_idx, fitness, len(plan.topologies))[1]):
            self.controller.tell_indexed(plan.topologies, all_idx, fitness)
        # The incumbent is judged on exact evals when there are any, else on the pairs' rollouts,
        judged = slice(2 * rp.size, None) if raw_exact.size else slice(0, 2 * rp.size)  # if sampled
        self.incumbent.update(plan.topologies, all_idx[judged], fitness[judged], keep_unseen=bool(raw_exact.size))
        if self.space.num_decisions:
            seen, mean_r = means_by_index(all_idx, rollouts, len(plan.topologies))
            front = front_indices(mean_r, uniq_sizes[seen])
            keep = seen[front]
            self.pareto.update(
                mean_r[front],
                uniq_sizes[keep],
                [plan.topologies[i].to_json() for i in keep.tolist()],
            )

        # Best policy: the evaluated policy with the highest reward of its own (esenas.best).
        limit, k = envload.episode_limit(self.spec.environment), incumbent_evals(self.spec.es.exact_evals)
        found, self.claim = best_evaluated(plan, topos, r, shift, limit, k), None
        if found is not None and found.reward > self.best_reward:
            policy = Policy(self.arch, found.topology, found.params, plan.obs_mean, plan.obs_std).to_json(
                environment=self._environment(), reward=found.reward, iteration=plan.iteration)
            self.claim = Claim.of(found, policy, plan, r, shift, limit)
            if trust_best:
                self.adopt(self.claim, found.reward)
                self.claim = None

        it_steps, it_eps = int(r.steps.sum()) + int(c.steps.sum()), plan.episodes + 2 * len(c)
        self.env_steps += it_steps
        self.episodes += it_eps
        self.iteration += 1
        self.version += 1
        self._plan, self._plan_topos = None, []
        self._eps, self._eps_ready, self._feedback = None, 0, None
        trial, entropy = self.trials.number, self.controller.entropy()
        trials.advance(self, score)  # maybe a new trial's state (and version) from here on
        best_topo = Topology.from_json(self.best["topology"]) if self.best else self.current_topology()
        report = IterationReport(
            iteration=plan.iteration, version=self.version, reward_mean=reward_mean, reward_max=float(rollouts.max()),
            eval_reward=eval_reward, score=score, best_reward=float(self.best_reward), env_steps=it_steps, episodes=it_eps,
            total_env_steps=self.env_steps, total_episodes=self.episodes, grad_norm=float(np.linalg.norm(grad)),
            topology_size=self.arch.trainable_params(best_topo), dense_params=self.arch.dense_params,
            compression=self.arch.compression(best_topo), unique_topologies=len(plan.topologies),
            pareto_front=self.pareto.summary(), controller_entropy=entropy, trial=trial,
        )
        self.history.append({k: v for k, v in report.to_json().items() if k != "pareto_front"})
        self.history = thin_history(self.history)
        return report

    def adopt(self, claim: Claim, reward: float) -> bool:
        """Make ``claim``'s policy the best, scored ``reward`` (reported, or a replay's), if that is higher."""
        if not reward > self.best_reward:
            return False
        self.best_reward, self.best = reward, {**claim.policy, "reward": reward}
        return True

    # ------------------------------------------------------------------ stopping & results

    @property
    def elapsed_seconds(self) -> float:
        return self._elapsed_before + (time.monotonic() - self._t0)

    def seconds_left(self) -> float | None:
        """Training time left before ``stopping.deadlineSeconds`` (None: no deadline). A hair over,
        so that :meth:`done` says the deadline is reached once this much has passed."""
        deadline = self.spec.stopping.deadline_seconds
        return None if deadline is None else max(0.0, deadline - self.elapsed_seconds) + 1e-3

    def done(self) -> tuple[bool, str]:
        """(stop?, why) from the spec's stopping rules."""
        why = stop_reason(self.spec.stopping, self.best_reward, self.iteration, self.env_steps, self.episodes, self.elapsed_seconds)
        return bool(why), why

    def current_topology(self) -> Topology:
        """The incumbent: the topology rated best on its latest evaluation (fixed kinds: the only one)."""
        if self.incumbent.topology is not None:
            return self.incumbent.topology
        return self.controller.ask(1, rng=_rng(self.spec.seed, streams.FIRST_TOPOLOGY))[0]

    def current_policy(self) -> Policy:
        """The centre (the current shared weights, unperturbed, as the plan sends them) under the incumbent topology."""
        mean, std = self.obs_mean_std()
        return Policy(self.arch, self.current_topology(), self.params.astype(np.float32), mean, std)

    def best_policy(self) -> dict[str, Any]:
        """JSON-able compact policy of the best policy found, with its own reward (``esenas eval`` loads it);
        before any, the centre under the incumbent topology."""
        if self.best is not None:
            return dict(self.best)
        return self.current_policy().to_json(environment=self._environment(), reward=None, iteration=self.iteration)

    def _environment(self) -> dict[str, Any]:
        e = self.spec.environment
        return {"id": e.id, "maxEpisodeSteps": envload.episode_limit(e), "kwargs": dict(e.kwargs)}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (plain data and numpy arrays): :mod:`esenas.state`."""
        return state_dict(self)

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> ESENAS:
        algo = cls(spec_of(d), int(d["obs_dim"]), int(d["act_dim"]))
        load_state(algo, d)
        return algo
