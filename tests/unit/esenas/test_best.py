"""Honest bookkeeping: a saved policy carries its own reward, and the incumbent topology is demoted."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from esenas.algorithm import ESENAS
from esenas.best import Incumbent, incumbent_evals, rollout_rewards
from esenas.controllers.base import F64, Controller
from esenas.es import perturbation
from esenas.policies import Policy
from esenas.results import KIND_EXACT, KIND_PAIR, Plan, Results
from esenas.spec import ControllerSpec, JobSpec, parse_spec
from esenas.topology import Topology

OBS, ACT, N = 4, 2, 4
A, B, C = (Topology("partition", np.full(OBS * ACT, c, np.int64)) for c in (0, 1, 2))
D = Topology("partition", np.arange(OBS * ACT, dtype=np.int64) % 3)


class Scripted(Controller):
    """Proposes the next scripted batch; learns nothing."""

    def __init__(self, batches: list[list[Topology]]) -> None:
        super().__init__(None, ControllerSpec(type="random"), 0)  # type: ignore[arg-type]
        self.batches = batches
        # The first topology (ESENAS.current_topology before any incumbent, which iteration 0's
        # exact evals re-score): the first batch's first exact eval, so each script reads as run.
        self.first = batches[0][min(N, len(batches[0]) - 1)]

    def ask(self, n: int, rng: np.random.Generator | None = None) -> list[Topology]:
        if n == 1:
            return [self.first]
        batch = self.batches.pop(0)
        assert len(batch) == n
        return list(batch)

    def _tell(self, topologies: list[Topology], fitness: F64) -> None:
        return None


def spec(exact: int, **stopping: object) -> JobSpec:
    return parse_spec({
        "environment": {"id": "Toy-v0", "maxEpisodeSteps": 10},
        "policy": {"topology": "partition", "partitions": 3},
        "controller": {"type": "random"},  # replaced by Scripted; random's state is the same
        "es": {"perturbations": N, "exactEvals": exact},
        "stopping": stopping,
    })


def scripted(s: JobSpec, *batches: list[Topology]) -> ESENAS:
    algo = ESENAS(s, OBS, ACT)
    algo.controller = Scripted(list(batches))
    return algo


def tell(algo: ESENAS, pairs: Sequence[tuple[float, float]], exact: Sequence[float], steps: int = 20) -> Plan:
    plan = algo.ask()
    n = plan.items.size
    pos = np.array([p for p, _ in pairs] + list(exact), np.float64)
    neg = np.array([q for _, q in pairs] + [np.nan] * len(exact), np.float64)
    algo.tell(Results(plan.items["index"].copy(), pos, neg, np.full(n, steps, np.uint32)))
    return plan


def test_saved_reward_is_the_mean_of_that_topologys_own_exact_evals() -> None:
    # A scores 100 and 0 (mean 50), B 60 and 60: the best policy is B's, with 60. The old code
    # stored A (its single 100) with the mean over all four evaluations, 55.
    algo = scripted(spec(4), [C] * N + [A, A, B, B])
    tell(algo, [(0.0, 0.0)] * N, [100.0, 0.0, 60.0, 60.0])
    best = algo.best_policy()
    assert Topology.from_json(best["topology"]) == B
    assert best["reward"] == algo.best_reward == 60.0
    assert algo.history[-1]["best_reward"] == 60.0


def test_target_reward_is_checked_on_the_best_policys_own_reward() -> None:
    # Exact evals of three topologies: A 90, 90, C 10 and B 10. Their mean (50) is below the
    # target of 80; the best policy's own reward (90) reaches it.
    algo = scripted(spec(4, targetReward=80), [C] * N + [A, A, C, B])
    tell(algo, [(0.0, 0.0)] * N, [90.0, 90.0, 10.0, 10.0])
    done, why = algo.done()
    assert done and "target reward 80 reached (90.0)" in why


def test_half_the_exact_evals_re_score_the_incumbent_and_the_rest_sample() -> None:
    assert [incumbent_evals(e) for e in range(6)] == [0, 1, 1, 2, 2, 3]
    algo = scripted(spec(4), [C] * N + [A, B, C, B], [B] * N + [C, C, A, C])
    # no incumbent yet: the first topology (A) takes its place, so iteration 0 can judge it
    first = tell(algo, [(0.0, 0.0)] * N, [5.0, 1.0, 1.0, 1.0])
    assert [first.topologies[int(t)] for t in first.items["topology"][N:]] == [A, A, C, B]
    assert algo.best_reward == 3.0  # A's mean: the first iteration already has a best
    assert algo.current_topology() == A
    nxt = algo.ask()  # A re-scored twice, then the controller's samples
    assert [nxt.topologies[int(t)] for t in nxt.items["topology"][N:]] == [A, A, A, C]


def test_a_topology_sampled_once_is_never_the_best_on_that_one_episode() -> None:
    # Iteration 0: B (the first topology, in the incumbent's place) scores 1 twice, A 100 once:
    # only B has 2 of the 4 exact evals, so B is the best (1.0), while A takes the title on its
    # one episode. Iteration 1 re-scores A twice (10 and 20) and D, sampled once, scores 90: the
    # best is A at its mean, 15, never a single episode; D takes the title and must hold it when
    # re-scored.
    algo = scripted(spec(4), [C] * N + [B, C, A, C], [C] * N + [C, C, D, B])
    tell(algo, [(0.0, 0.0)] * N, [1.0, 1.0, 100.0, 0.0])
    assert algo.best_reward == 1.0 and Topology.from_json(algo.best_policy()["topology"]) == B
    assert algo.current_topology() == A
    plan = tell(algo, [(0.0, 0.0)] * N, [10.0, 20.0, 90.0, 5.0])
    assert [plan.topologies[int(t)] for t in plan.items["topology"][N:]] == [A, A, D, B]
    assert algo.best_reward == 15.0 and Topology.from_json(algo.best_policy()["topology"]) == A
    assert algo.current_topology() == D


def test_without_exact_evals_the_saved_policy_is_the_best_rollouts_perturbed_weights() -> None:
    algo = scripted(spec(0), [A, B, A, C])
    plan = tell(algo, [(1.0, 2.0), (3.0, 9.0), (4.0, 0.0), (5.0, 5.0)], [])
    best = algo.best_policy()
    assert best["reward"] == algo.best_reward == 9.0  # not the mean of all rollouts, 3.6
    assert Topology.from_json(best["topology"]) == B
    eps = perturbation(int(plan.items["seed"][1]), algo.arch.num_params)
    expected = plan.params.astype(np.float64) - plan.sigma * eps  # the - rollout of pair 1
    assert np.array_equal(Policy.from_json(best).params, expected)


def test_shifted_rollout_rewards_are_never_overstated() -> None:
    # shift 1, episodes of at most 10 steps: a pair of 20 steps is exact (10 each); a pair of 12
    # steps may be 2 + 10 or 10 + 2, so each rollout is credited its fewest possible steps, 2.
    r = Results(np.arange(2, dtype=np.uint32), np.array([5.0, 5.0]), np.array([7.0, 7.0]), np.array([20, 12], np.uint32))
    pos, neg = rollout_rewards(r, np.array([True, True]), 1.0, 10)
    assert pos.tolist() == [15.0, 7.0] and neg.tolist() == [17.0, 9.0]
    pos, neg = rollout_rewards(r, np.array([True, True]), -1.0, 10)
    assert pos.tolist() == [-5.0, -5.0] and neg.tolist() == [-3.0, -3.0]


def test_best_reward_is_all_time_but_each_value_is_one_policys_own() -> None:
    algo = scripted(spec(2), [C] * N + [A, B], [C] * N + [A, C])
    tell(algo, [(0.0, 0.0)] * N, [50.0, 10.0])
    tell(algo, [(0.0, 0.0)] * N, [20.0, 30.0])  # A re-scored at 20: worse, so best stays 50
    assert algo.best_reward == 50.0 and algo.best is not None and algo.best["iteration"] == 0


def test_incumbent_is_demoted_when_its_fresh_evaluation_disagrees() -> None:
    inc = Incumbent()
    inc.update([A, B], np.array([0, 1, 1]), np.array([10.0, 5.0, 5.0]))  # A lucky
    assert inc.topology == A and inc.score == 10.0
    inc.update([B, A], np.array([1, 0]), np.array([1.0, 5.0]))  # A re-scored at 1, B at 5
    assert inc.topology == B and inc.score == 5.0
    inc.update([C], np.array([0]), np.array([4.0]))  # B not evaluated: C must beat B's latest 5
    assert inc.topology == B
    inc.update([B, C], np.array([0, 1]), np.array([3.0, 4.0]))
    assert inc.topology == C


def test_without_re_scoring_an_unseen_incumbent_gives_way_to_the_iterations_best() -> None:
    inc = Incumbent()
    inc.update([A, B], np.array([0, 1]), np.array([10.0, 5.0]), keep_unseen=False)  # A lucky
    inc.update([B, C], np.array([0, 1]), np.array([3.0, 4.0]), keep_unseen=False)  # A not sampled
    assert inc.topology == C and inc.score == 4.0  # A's 10 was of older weights
    inc.update([C, B], np.array([0, 1]), np.array([2.0, 1.0]), keep_unseen=False)  # C sampled: re-scored
    assert inc.topology == C and inc.score == 2.0


def test_a_run_without_exact_evals_never_keeps_a_stale_incumbent() -> None:
    # No exact evals: the incumbent is judged on the pairs. A scores 100 once, then the
    # controller only samples C; the current weights are then C's, not the long-gone A's.
    algo = scripted(spec(0), [A] + [C] * (N - 1), [C] * N)
    tell(algo, [(100.0, 100.0)] + [(0.0, 0.0)] * (N - 1), [])
    assert algo.current_topology() == A
    tell(algo, [(1.0, 1.0)] * N, [])
    assert algo.current_topology() == C


def test_the_run_demotes_a_lucky_topology_and_re_scores_the_new_incumbent() -> None:
    # Iteration 0: A scores 100 once. Iteration 1: the first exact eval re-scores A (10), B scores
    # 50, so B is the incumbent, and iteration 2's first exact eval is B's.
    algo = scripted(spec(2), [C] * N + [A, C], [C] * N + [C, B], [C] * N + [C, C])
    tell(algo, [(0.0, 0.0)] * N, [100.0, 0.0])
    assert algo.current_topology() == A
    plan = tell(algo, [(0.0, 0.0)] * N, [10.0, 50.0])
    assert plan.topologies[int(plan.items["topology"][N])] == A  # A was re-scored
    assert algo.current_topology() == B
    nxt = algo.ask()
    assert nxt.topologies[int(nxt.items["topology"][N])] == B
    assert nxt.items["kind"][N] == KIND_EXACT and nxt.items["kind"][N - 1] == KIND_PAIR


def test_incumbent_survives_a_state_round_trip() -> None:
    algo = scripted(spec(2), [C] * N + [A, B])
    tell(algo, [(0.0, 0.0)] * N, [1.0, 7.0])
    again = ESENAS.from_state_dict(algo.state_dict())
    assert again.incumbent == algo.incumbent and again.current_topology() == B
    old = algo.state_dict()
    del old["incumbent"]
    old["controller"]["best_topology"] = A.to_json()  # a checkpoint from before esenas.best
    assert ESENAS.from_state_dict(old).current_topology() == A


def test_budget_used_is_the_largest_share_of_the_limits_set() -> None:
    from esenas.best import budget_used
    from esenas.spec import StoppingSpec

    assert budget_used(StoppingSpec(max_iterations=100), 25, 10**9, 10**9) == 0.25  # no step or episode limit
    both = StoppingSpec(max_iterations=100, max_env_steps=1000, max_episodes=50)
    assert budget_used(both, 10, 600, 5) == 0.6
    assert budget_used(both, 10, 100, 40) == 0.8
    assert budget_used(both, 500, 5000, 500) == 1.0  # past a limit (an edit lowered it): the end


def test_the_step_size_falls_linearly_to_its_end_fraction() -> None:
    from esenas.best import scheduled_step_size

    s = parse_spec({"environment": {"id": "Toy-v0"}, "es": {"stepSize": 0.2, "stepSizeEndFraction": 0.25},
                    "stopping": {"maxIterations": 1000, "maxEnvSteps": 400}})
    assert scheduled_step_size(s, 0, 0, 0) == 0.2
    assert np.isclose(scheduled_step_size(s, 1, 200, 0), 0.2 * (1 - 0.75 * 0.5))
    assert np.isclose(scheduled_step_size(s, 2, 400, 0), 0.05)
    assert np.isclose(scheduled_step_size(s, 9, 800, 0), 0.05)  # never below the end
    constant = parse_spec({"environment": {"id": "Toy-v0"}, "es": {"stepSize": 0.2}, "stopping": {"maxEnvSteps": 400}})
    assert constant.es.step_size_end_fraction == 1.0
    assert scheduled_step_size(constant, 3, 399, 0) == 0.2
