"""spec.trials: independent starts, judged on their last iterations, of which the best goes on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from esenas.algorithm import ESENAS
from esenas.results import Carried, Results
from esenas.spec import JobSpec, parse_spec

from .test_algorithm import ACT, OBS, run, synthetic

STEPS_PER_IT = 18 * 10  # 16 pairs and 2 exact evals, 10 steps each (test_algorithm.synthetic)


def spec(
    count: int, env_steps: int = 5 * STEPS_PER_IT, budget: int = 100 * STEPS_PER_IT
) -> JobSpec:
    return parse_spec(
        {
            "environment": {"id": "Toy-v0"},
            "seed": 3,
            "policy": {
                "template": "mlp",
                "hiddenLayers": [5],
                "topology": "partition",
                "partitions": 3,
            },
            "controller": {"type": "policy_gradient"},
            "es": {
                "sigma": 0.05,
                "stepSize": 0.05,
                "perturbations": 16,
                "exactEvals": 2,
                "optimizer": "adam",
            },
            "stopping": {"maxEnvSteps": budget},
            "trials": {"count": count, "envSteps": env_steps},
        }
    )


def test_one_trial_is_the_plain_run() -> None:
    plain = parse_spec({"environment": {"id": "Toy-v0"}}).trials
    assert plain.count == 1
    a, b = ESENAS(spec(1), OBS, ACT), ESENAS(dataclasses.replace(spec(1), trials=plain), OBS, ACT)
    # the initial weights of the stream a run drew before spec.trials existed: (seed, purpose 3)
    before = a.arch.init_params(np.random.Generator(np.random.PCG64(np.random.SeedSequence([3, 3]))))
    assert np.array_equal(a.params, before) and np.array_equal(b.params, before)
    assert run(a, 8) == run(b, 8)  # trials.envSteps is not used with one trial
    assert (
        a.trials.label == ""
        and a.history[-1]["trial"] is None
        and a.state_dict()["trials"]["scores"] == []
    )


def favouring(winner: int) -> Callable[[ESENAS], None]:
    """Rollouts of the synthetic task, with a bonus for every rollout of trial ``winner`` (from 0)."""

    def step(a: ESENAS) -> None:
        res = synthetic(a, a.ask())
        if a.trials.index == winner:
            res = Results(
                res.index,
                res.reward_pos + 100.0,
                res.reward_neg + 100.0,
                res.steps,
                res.obs_count,
                res.obs_sum,
                res.obs_sumsq,
            )
        a.tell(res)

    return step


def test_each_trial_starts_afresh_and_the_best_judged_goes_on() -> None:
    a = ESENAS(spec(3), OBS, ACT)
    starts, labels = [a.params.copy()], []
    for _ in range(20):
        before = a.trials.index
        a.tell(synthetic(a, a.ask()))
        labels.append(a.history[-1]["trial"])
        if a.trials.running and a.trials.index != before:
            starts.append(a.params.copy())
    assert labels[:15] == [1] * 5 + [2] * 5 + [3] * 5  # 5 iterations of 180 steps reach 900
    assert len(a.trials.scores) == 3 and not a.trials.running
    # each trial had its own initial weights
    assert not np.array_equal(starts[0], starts[1]) and not np.array_equal(starts[1], starts[2])
    best = int(np.argmax(a.trials.scores))
    assert a.trials.chosen == best and labels[15:] == [best + 1] * 5
    assert a.trials.label == f"trial {best + 1} of 3 kept"
    # the judged score is the mean of the trial's last 5 iterations' scores
    scores = [h["score"] for h in a.history]
    assert np.allclose(a.trials.scores, [np.mean(scores[i * 5 : i * 5 + 5]) for i in range(3)])
    assert a.env_steps == 20 * STEPS_PER_IT  # every trial's steps count in the run's


def test_the_kept_trial_goes_on_from_where_it_ended() -> None:
    for winner in (0, 1):
        a, step = ESENAS(spec(2), OBS, ACT), favouring(winner)
        for _ in range(5):
            step(a)
        kept = a.trials.kept  # trial 1 ended: kept, as the best so far
        assert a.trials.index == 1 and kept is not None and kept["trial"] == 0
        for _ in range(4):
            step(a)
        before = ESENAS.from_state_dict(a.state_dict())
        step(a)  # trial 2 ends
        assert (
            a.trials.chosen == winner
            and a.trials.kept is None
            and a.trials.label == f"trial {winner + 1} of 2 kept"
        )
        if winner == 0:  # trial 1's own weights, optimiser, normaliser and controller are back
            assert np.array_equal(a.params, kept["params"])
            assert a.controller.state_dict()["rng"] == kept["controller"]["rng"]
            assert a.obs_stats.state_dict()["count"] == kept["obs_stats"]["count"]
        else:  # trial 2 goes on from its own last step
            assert not np.array_equal(a.params, kept["params"]) and not np.array_equal(
                a.params, before.params
            )
            assert a.obs_stats.state_dict()["count"] > before.obs_stats.state_dict()["count"]


def test_a_checkpoint_mid_trials_resumes_exactly() -> None:
    a = ESENAS(spec(3), OBS, ACT)
    run(a, 7)  # in trial 2, with trial 1 kept
    assert a.trials.index == 1 and a.trials.kept is not None
    b = ESENAS.from_state_dict(a.state_dict())
    assert run(a, 12) == run(b, 12)
    assert a.trials.scores == b.trials.scores and a.trials.chosen == b.trials.chosen
    assert np.array_equal(a.params, b.params)


def test_pairs_carried_over_a_trial_end_are_dropped() -> None:
    a = ESENAS(spec(2), OBS, ACT)
    run(a, 5)
    assert a.trials.drop_carried  # trial 2 just started
    b = ESENAS.from_state_dict(a.state_dict())
    plan = a.ask()
    res = synthetic(a, plan)
    carried = Carried(
        np.array([12345], np.uint64), np.array([1e6]), np.array([-1e6]), np.array([10], np.uint32)
    )
    a.tell(res, carried=carried)
    b.tell(synthetic(b, b.ask()))
    assert np.array_equal(a.params, b.params)  # the carried pair (another trial's) moved nothing
