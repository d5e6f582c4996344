"""A new best is the aggregator's to adopt (esenas_aggregator.confirm): ``tell(trust_best=False)``
leaves it as a claim, the aggregator's replay of the claim's items reproduces honest rollouts bit for
bit (exact evals, and a pair under a reward shift), and a claim that does not replay is adopted at
the replay's lower reward, so a worker's lie cannot set the best."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from esenas import checkpoint
from esenas.algorithm import ESENAS
from esenas.best import Claim
from esenas.results import KIND_PAIR, Results
from esenas.rollout import Evaluator, env_dims
from esenas.spec import load_job
from esenas_aggregator.confirm import Confirmer, replay
from esenas_aggregator.metrics import Metrics

from tests.unit.esenas_aggregator.test_guard import _aggregator, _drive

#: (environment, policy, es): exact evals on one fixed topology; a chromatic policy whose best comes
#: from one pair's rollout, with Hopper's survival bonus shifted out of the pairs' rewards.
JOBS: dict[str, dict[str, Any]] = {
    "exact-evals": {
        "environment": {"id": "InvertedPendulum-v5", "maxEpisodeSteps": 200},
        "policy": {"template": "linear", "topology": "dense"},
        "es": {"perturbations": 4, "exactEvals": 4},
    },
    "pair-with-shift": {
        "environment": {"id": "Hopper-v5", "maxEpisodeSteps": 200},
        "policy": {"template": "mlp", "hiddenLayers": [8], "topology": "partition", "partitions": 5},
        "es": {"perturbations": 4, "exactEvals": 0, "rewardShift": 1.0},
    },
}


def _claim(kind: str) -> tuple[ESENAS, Claim, Evaluator]:
    spec = load_job({"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "t"}, "spec": JOBS[kind]}).spec
    algo = ESENAS(spec, *env_dims(spec.environment))
    plan = algo.ask()
    worker = Evaluator(spec)
    worker.set_plan(plan.params, plan.obs_mean, plan.obs_std, plan.sigma, plan.topologies)
    algo.tell(worker.run(plan.items), trust_best=False)
    assert algo.claim is not None
    worker.close()
    return algo, algo.claim, Evaluator(spec)


def _counts(m: Metrics) -> dict[str, float]:
    return {o: m.registry.get_sample_value("esenas_best_claims_total", {"esenas_job": "j", "esenas_namespace": "ns", "outcome": o}) or 0.0
            for o in ("confirmed", "corrected", "unchecked")}


@pytest.mark.parametrize("kind", sorted(JOBS))
def test_a_claimed_best_waits_for_adoption_and_replays_bit_for_bit(kind: str) -> None:
    algo, claim, aggregator_side = _claim(kind)
    assert algo.best is None and algo.best_reward == -np.inf  # not adopted on the workers' word
    assert (claim.found.sign == 0) == (kind == "exact-evals")
    if kind == "pair-with-shift":
        assert claim.items["kind"].tolist() == [KIND_PAIR]
    again = replay(aggregator_side, claim)
    for name in ("index", "reward_pos", "reward_neg", "steps"):
        np.testing.assert_array_equal(getattr(again, name), getattr(claim.reported, name), err_msg=name)
    assert claim.reward_of(again) == claim.reward == claim.reward_of(claim.reported)
    assert algo.adopt(claim, claim.reward)
    assert algo.best_reward == claim.reward and algo.best is not None and algo.best["reward"] == claim.reward
    assert not algo.adopt(claim, claim.reward - 1.0)  # only a higher reward replaces the best


def test_a_claim_that_does_not_replay_is_adopted_at_the_replays_reward(caplog: pytest.LogCaptureFixture) -> None:
    algo, claim, aggregator_side = _claim("exact-evals")
    honest = claim.reward_of(replay(aggregator_side, claim))
    lie = dataclasses.replace(claim, found=dataclasses.replace(claim.found, reward=999_999.0))
    metrics = Metrics("j", "ns")
    confirmer = Confirmer(algo.spec, metrics, 10.0)
    with caplog.at_level(logging.WARNING):
        assert confirmer._adopt(algo, lie, replay(aggregator_side, lie))
    assert algo.best_reward == honest < 999_999.0
    assert algo.best is not None and algo.best["reward"] == honest
    assert _counts(metrics) == {"confirmed": 0.0, "corrected": 1.0, "unchecked": 0.0}
    assert "reported at 999999, but replaying its items" in caplog.text


def test_a_replay_that_fails_adopts_the_claim_as_reported_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    algo, claim, _ = _claim("exact-evals")
    metrics = Metrics("j", "ns")
    confirmer = Confirmer(algo.spec, metrics, 10.0)
    with caplog.at_level(logging.WARNING):
        assert confirmer._adopt(algo, claim, RuntimeError("no MuJoCo here"))
        assert not confirmer._adopt(algo, claim, RuntimeError("no MuJoCo here"))
    assert algo.best_reward == claim.reward
    assert _counts(metrics)["unchecked"] == 2.0
    assert caplog.text.count("could not replay a claimed best") == 1


def test_the_replay_process_confirms_an_honest_claim_and_calls_back(caplog: pytest.LogCaptureFixture) -> None:
    algo, claim, _ = _claim("exact-evals")
    metrics = Metrics("j", "ns")
    ended: list[int] = []

    async def go() -> bool:
        confirmer = Confirmer(algo.spec, metrics, 10.0, lambda: ended.append(1))
        try:
            confirmer.submit(claim)
            assert algo.best is None  # submit does not wait
            await confirmer.wait()
            return confirmer.settle(algo)
        finally:
            confirmer.close()

    with caplog.at_level(logging.INFO):
        assert asyncio.run(go())
    assert algo.best_reward == claim.reward
    assert ended == [1]
    assert "iteration 0's best" in caplog.text and "confirmed by the aggregator's replay" in caplog.text
    assert _counts(metrics) == {"confirmed": 1.0, "corrected": 0.0, "unchecked": 0.0}


def test_a_trusting_tell_adopts_at_once_as_the_in_process_trainer_does() -> None:
    spec = load_job({"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "t"}, "spec": JOBS["exact-evals"]}).spec
    algo = ESENAS(spec, *env_dims(spec.environment))
    plan = algo.ask()
    n = len(plan.items)
    algo.tell(Results(plan.items["index"], np.full(n, 5.0), np.where(plan.items["kind"] == KIND_PAIR, 1.0, np.nan), np.full(n, 10, np.uint32)))
    assert algo.claim is None and algo.best_reward == 5.0


def test_a_replay_that_does_not_end_in_time_drops_its_claim(caplog: pytest.LogCaptureFixture) -> None:
    algo, claim, _ = _claim("exact-evals")
    confirmer = Confirmer(algo.spec, Metrics("j", "ns"), 10.0)
    confirmer._run = lambda claim, delay_s=0.0: time.sleep(1.0)  # type: ignore[method-assign]  # a replay stuck in the task

    async def go() -> bool:
        confirmer.submit(claim)
        with caplog.at_level(logging.WARNING):
            await confirmer.wait(0.05)
        return confirmer.settle(algo)

    try:
        assert not asyncio.run(go())
    finally:
        confirmer.close()
    assert algo.best is None and algo.best_reward == -np.inf
    assert "1 claimed best(s) dropped: the replay did not end within 0.05 s" in caplog.text


def test_an_adopted_best_reaches_the_snapshot_that_checkpoints_and_stops_write(tmp_path: Path) -> None:
    """The aggregator's loop: each iteration's claim is replayed while the next runs, and a best
    adopted between iterations is in the snapshot that a checkpoint or a SIGTERM stop writes."""
    agg = _aggregator(tmp_path)

    async def go() -> None:
        seen = await _drive(agg, [False, False])
        assert seen == [0, 1]
        await agg.confirm.wait(60)
        agg._settle()

    try:
        asyncio.run(go())
    finally:
        agg.confirm.close()
    assert agg.algo.best is not None  # made-up rewards of 1: the replays corrected them, to at most 1
    assert agg.algo.best_reward <= 1.0
    saved = checkpoint.decode(agg._snapshot)["algo"]
    assert saved["best_reward"] == agg.algo.best_reward and saved["best"] == agg.algo.best
    counts = {o: agg.metrics.best_claims[o]._value.get() for o in ("confirmed", "corrected", "unchecked")}
    assert counts["unchecked"] == 0 and counts["confirmed"] + counts["corrected"] >= 1


def test_claims_that_wait_for_a_running_replay_keep_only_the_highest() -> None:
    algo, claim, aggregator_side = _claim("exact-evals")
    metrics = Metrics("j", "ns")
    confirmer = Confirmer(algo.spec, metrics, 10.0)
    replayed: list[float] = []

    def slow(c: Claim, delay_s: float = 0.0) -> Results:  # the real replay, in this process, slowly
        time.sleep(0.2)
        replayed.append(c.reward)
        return replay(aggregator_side, c)

    confirmer._run = slow  # type: ignore[method-assign]
    lower = dataclasses.replace(claim, found=dataclasses.replace(claim.found, reward=claim.reward - 1.0))
    lie = dataclasses.replace(claim, found=dataclasses.replace(claim.found, reward=999_999.0))

    async def go() -> None:
        for c in (claim, lower, lie):  # the first runs; the lower one waits, then gives way to the lie
            confirmer.submit(c)
        await confirmer.wait(30)
        confirmer.settle(algo)

    try:
        asyncio.run(go())
    finally:
        confirmer.close()
    assert replayed == [claim.reward, 999_999.0]
    assert algo.best_reward == claim.reward
    assert _counts(metrics) == {"confirmed": 1.0, "corrected": 1.0, "unchecked": 0.0}
