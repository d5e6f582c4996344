"""ESENAS ask/tell: learning on a synthetic task, determinism, exact state round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from esenas import algorithm, trials
from esenas.algorithm import ESENAS, Plan, Results
from esenas.es import perturbation
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.spec import JobSpec, parse_spec

OBS, ACT = 4, 2


def spec(**policy: object) -> JobSpec:
    raw = {
        "environment": {"id": "Toy-v0"},
        "seed": 3,
        "policy": policy or {"template": "linear"},
        "es": {"sigma": 0.05, "stepSize": 0.05, "perturbations": 16, "exactEvals": 2, "optimizer": "adam"},
    }
    return parse_spec(raw)


def synthetic(algo: ESENAS, plan: Plan) -> Results:
    """Rollouts replaced by a reward that prefers the policy's output to equal the input."""
    arch: Architecture = algo.arch
    obs = np.random.default_rng(0).normal(size=(64, OBS))
    target = obs[:, :ACT]
    params = plan.params.astype(np.float64)

    def reward(p: np.ndarray, k: int) -> float:
        act = Policy(arch, plan.topologies[k], p).act(obs)
        return float(-np.mean((act - target) ** 2))

    n = plan.items.size
    pos, neg = np.zeros(n), np.full(n, np.nan)
    for i, it in enumerate(plan.items):
        k = int(it["topology"])
        if it["kind"] == 0:
            eps = plan.sigma * perturbation(int(it["seed"]), params.size)
            pos[i], neg[i] = reward(params + eps, k), reward(params - eps, k)
        else:
            pos[i] = reward(params, k)
    cnt = float(obs.shape[0])
    return Results(plan.items["index"].copy(), pos, neg, np.full(n, 10, np.uint32), cnt, obs.sum(0), (obs**2).sum(0))


def run(algo: ESENAS, iterations: int) -> list[float]:
    scores = []
    for _ in range(iterations):
        plan = algo.ask()
        res = synthetic(algo, plan)
        order = np.random.default_rng(plan.iteration).permutation(plan.items.size)  # any order
        shuffled = Results(res.index[order], res.reward_pos[order], res.reward_neg[order], res.steps[order], res.obs_count, res.obs_sum, res.obs_sumsq)
        scores.append(algo.tell(shuffled).score)
    return scores


def test_learns_the_synthetic_task() -> None:
    algo = ESENAS(spec(), OBS, ACT)
    scores = run(algo, 60)
    assert np.mean(scores[-5:]) > 0.5 * np.mean(scores[:3])  # rewards are negative: closer to 0


def test_whole_run_is_deterministic_given_the_seed() -> None:
    s = spec(template="mlp", hiddenLayers=[5], topology="partition", partitions=3)
    a, b = ESENAS(s, OBS, ACT), ESENAS(s, OBS, ACT)
    assert run(a, 5) == run(b, 5)
    assert np.array_equal(a.params, b.params)
    other = ESENAS(dataclasses.replace(s, seed=4), OBS, ACT)
    run(other, 5)
    assert not np.array_equal(a.params, other.params)


CASES = [
    ({"template": "linear"}, "none"),
    *[
        (policy, ctype)
        for policy in (
            {"template": "mlp", "hiddenLayers": [5], "topology": "partition", "partitions": 3},
            {"template": "mlp", "hiddenLayers": [5], "topology": "edges", "edges": 8},
        )
        for ctype in ("evolution", "policy_gradient", "random")
    ],
]


@pytest.mark.parametrize(("policy", "ctype"), CASES)
def test_state_dict_round_trip_gives_identical_next_ask(policy: dict[str, object], ctype: str) -> None:
    base = spec(**policy)
    s = dataclasses.replace(base, controller=dataclasses.replace(base.controller, type=ctype, population_size=4))
    a = ESENAS(s, OBS, ACT)
    run(a, 6)
    b = ESENAS.from_state_dict(a.state_dict())
    pa, pb = a.ask(), b.ask()
    assert np.array_equal(pa.items, pb.items) and pa.topologies == pb.topologies
    assert np.array_equal(pa.params, pb.params) and np.array_equal(pa.obs_std, pb.obs_std)
    assert run(a, 2) == run(b, 2)
    assert a.best_policy() == b.best_policy()


def test_ask_is_idempotent_until_tell() -> None:
    a = ESENAS(spec(), OBS, ACT)
    assert a.ask() is a.ask()


def test_tell_rejects_missing_duplicate_and_nonfinite_results() -> None:
    a = ESENAS(spec(), OBS, ACT)
    res = synthetic(a, a.ask())
    dup = Results(np.r_[res.index[:-1], res.index[0]], res.reward_pos, res.reward_neg, res.steps)
    with pytest.raises(ValueError, match="exactly once"):
        a.tell(dup)
    bad = Results(res.index, np.r_[np.nan, res.reward_pos[1:]], res.reward_neg, res.steps)
    with pytest.raises(ValueError, match="finite"):
        a.tell(bad)
    assert a.iteration == 0
    a.tell(res)
    assert a.iteration == 1 and a.version == 1


def test_stopping_rules() -> None:
    s = spec()
    a = ESENAS(dataclasses.replace(s, stopping=dataclasses.replace(s.stopping, max_iterations=2)), OBS, ACT)
    assert a.done() == (False, "")
    run(a, 2)
    assert a.done()[0] and "max iterations" in a.done()[1]


def test_first_exact_eval_scores_the_incumbent_topology() -> None:
    s = spec(template="mlp", hiddenLayers=[5], topology="partition", partitions=3)
    a = ESENAS(s, OBS, ACT)
    run(a, 3)
    plan = a.ask()
    first_exact = plan.items[plan.items["kind"] == 1][0]
    assert a.incumbent.topology is not None
    assert plan.topologies[int(first_exact["topology"])] == a.incumbent.topology


def test_init_perturbation_and_controller_streams_are_all_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    # SeedSequence pads with zeros: (seed, 2) was both the init stream and iteration 2's
    # perturbation stream, and (seed, 0) both iteration 0's and the first-topology stream.
    made: list[tuple[tuple[int, ...], str]] = []
    real = algorithm._rng

    def spy(*words: int) -> np.random.Generator:
        g = real(*words)
        made.append((words, repr(g.bit_generator.state["state"])))
        return g

    monkeypatch.setattr(algorithm, "_rng", spy)
    monkeypatch.setattr(trials, "_rng", spy)  # the initial weights' stream (one per trial)
    a = ESENAS(spec(template="mlp", hiddenLayers=[5], topology="partition", partitions=3), OBS, ACT)
    a.current_topology()
    run(a, 4)
    states: dict[str, tuple[int, ...]] = {}
    for words, state in made:
        assert states.setdefault(state, words) == words, f"streams {states[state]} and {words} coincide"
    assert len(states) >= 1 + 1 + 2 * 4  # init, first topology, perturbations and controller per iteration


def test_the_update_uses_the_scheduled_step_size() -> None:
    """es.stepSizeEndFraction: each update steps with the step size of the budget used before it,
    against a twin with a constant step that is given the same state and the same results."""
    raw = {"environment": {"id": "Toy-v0"}, "seed": 3, "policy": {"template": "linear"},
           "es": {"sigma": 0.05, "stepSize": 0.08, "stepSizeEndFraction": 0.25, "perturbations": 8, "optimizer": "sgd"},
           "stopping": {"maxIterations": 4}}
    a = ESENAS(parse_spec(raw), OBS, ACT)
    for k in range(4):
        twin = ESENAS.from_state_dict(a.state_dict())
        twin.spec = dataclasses.replace(twin.spec, es=dataclasses.replace(twin.spec.es, step_size_end_fraction=1.0))
        before = a.params.copy()
        plan = a.ask()
        assert np.array_equal(twin.ask().items, plan.items)
        res = synthetic(a, plan)
        a.tell(res)
        twin.tell(res)
        want = 0.08 * (1 - 0.75 * k / 4)
        assert np.isclose(a.optimizer.step_size, want) and twin.optimizer.step_size == 0.08
        moved, twin_moved = a.params - before, twin.params - before  # SGD: step x the same gradient
        assert np.linalg.norm(twin_moved) > 0
        assert np.allclose(moved, twin_moved * want / 0.08)


def test_the_current_policy_acts_as_the_workers_rollouts_did() -> None:
    """current_policy() (evaluations of the current weights, best_policy() before a best) uses the
    numbers a plan sends, float32, not the trainer's float64 ones: on Humanoid-v5 a feature of std
    ~4e-7 moved by 0.6 std between the two, and the centre fell in 13 steps where it scored 400."""
    algo = ESENAS(spec(), OBS, ACT)  # no iteration yet: best_policy() is the centre too
    # a near-constant feature: its float64 mean is not a float32 number, and its std is tiny
    algo.obs_stats = algo.obs_stats.from_state_dict({"count": 1e6, "mean": [0.1, 1.3, -0.7, 2.1], "m2": [1e6, 1e6, 1.6e-7, 1e6]})
    algo.params = algo.params + 1.0 / 3.0  # not float32 numbers either
    plan = algo.ask()
    as_sent = Policy(algo.arch, algo.current_topology(), plan.params, plan.obs_mean, plan.obs_std)  # a worker's
    obs = np.array([[0.1, 1.3, -0.7, 2.1], [0.5, 1.0, -0.7 + 1e-7, 2.0]])
    assert np.array_equal(algo.current_policy().act(obs), as_sent.act(obs))
    float64 = Policy(algo.arch, algo.current_topology(), algo.params, *algo.obs_stats.mean_std())
    assert not np.allclose(float64.act(obs), as_sent.act(obs), atol=1e-3)  # what it used to act on
    assert algo.best is None
    assert Policy.from_json(algo.best_policy()).act(obs).tolist() == as_sent.act(obs).tolist()
