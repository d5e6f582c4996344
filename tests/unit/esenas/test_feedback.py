"""The controller's feedback summed while results arrive (esenas.feedback): the same step as the
sum at the barrier, bit for bit in any arrival order, and never a step from rewards tell did not get."""

from __future__ import annotations

import numpy as np
import pytest
from esenas.algorithm import ESENAS
from esenas.results import Results
from esenas.spec import parse_spec

OBS, ACT = 17, 6


def chromatic(perturbations: int = 400, algorithm: str = "reinforce", **es: object) -> ESENAS:
    spec = parse_spec({
        "environment": {"id": "Toy-v0"},
        "policy": {"template": "mlp", "hiddenLayers": [41], "topology": "partition", "partitions": 17},
        "controller": {"type": "policy_gradient", "algorithm": algorithm, "learningRate": 40},
        "objectives": {"sizeWeight": 0.1, "targetSize": 10},
        "es": {"perturbations": perturbations, "exactEvals": 8, "rewardShift": 1.0, **es},
    })
    return ESENAS(spec, OBS, ACT)


def results(algo: ESENAS, seed: int, scale: float = 50.0, mean: float = 1000.0) -> Results:
    plan = algo.ask()
    n, rng = plan.items.size, np.random.default_rng(seed)
    pair = plan.items["kind"] == 0
    return Results(
        plan.items["index"].copy(), rng.normal(mean, scale, n), np.where(pair, rng.normal(mean, scale, n), np.nan),
        rng.integers(100, 2000, n).astype(np.uint32), 10.0, np.zeros(OBS), np.ones(OBS),
    )


def after_two(**kw: object) -> ESENAS:
    """Past iteration 0, whose baseline is the batch's own mean (nothing to stream against)."""
    algo = chromatic(**kw)  # type: ignore[arg-type]
    for it in range(2):
        algo.tell(results(algo, it))
    return algo


def stream(algo: ESENAS, r: Results, order: np.ndarray, slices: int) -> None:
    while not algo.prefetch_topologies(8):
        pass
    n = algo.ask().items.size  # per item, as the runtime's queue holds them
    done, pos, neg, steps = np.zeros(n, bool), np.zeros(n), np.zeros(n), np.zeros(n, np.uint32)
    pos[r.index], neg[r.index], steps[r.index] = r.reward_pos, r.reward_neg, r.steps
    for part in np.array_split(order, slices):
        done[r.index[part]] = True
        algo.prefetch_feedback(done, pos, neg, steps, 10**9)


def unrounded(algo: ESENAS, r: Results) -> None:
    algo.controller.streamed_baseline = lambda: None  # type: ignore[method-assign]
    algo.tell(r)


def test_streamed_in_any_order_is_one_step_bit_for_bit_and_the_barrier_sum_within_rounding() -> None:
    a, b, c, ref = after_two(), after_two(), after_two(), after_two()
    r = results(a, 7)
    assert a.controller.streamed_baseline() is not None
    stream(a, r, np.random.default_rng(1).permutation(r.index.size), 40)
    stream(b, r, np.arange(r.index.size)[::-1], 3)
    assert a._feedback is not None and a._feedback.used.all()
    # results in any order to tell: it sorts them; c sums everything at tell
    shuffled = np.random.default_rng(2).permutation(r.index.size)
    for algo in (a, b, c):
        algo.tell(Results(r.index[shuffled], r.reward_pos[shuffled], r.reward_neg[shuffled], r.steps[shuffled], r.obs_count, r.obs_sum, r.obs_sumsq))
    unrounded(ref, r)
    la, lb, lc, lref = (x.controller.logits for x in (a, b, c, ref))  # type: ignore[attr-defined]
    assert np.array_equal(la, lb) and np.array_equal(la, lc)
    assert not np.array_equal(la, lref)  # rounded, so not the float sum's bits...
    np.testing.assert_allclose(la, lref, rtol=0, atol=1e-6)  # ...but its value
    assert np.abs(lref - after_two().controller.logits).max() > 1e-2  # and the step itself is not tiny
    assert a.controller.baseline == ref.controller.baseline  # type: ignore[attr-defined]
    assert np.array_equal(a.params, ref.params)


def concentrated(mode_logit: float = 8.0) -> ESENAS:
    """Past iteration 0, its controller settled as a run's is after ~10 iterations: each decision's
    likeliest choice has ~99.5% of the probability (entropy ~0.03 nats per decision)."""
    algo = after_two()
    pg = algo.controller
    logits = np.zeros_like(pg.logits)  # type: ignore[attr-defined]
    logits[np.arange(logits.shape[0]), np.random.default_rng(3).integers(0, 17, logits.shape[0])] = mode_logit
    pg.set_logits(logits)  # type: ignore[attr-defined]
    return algo


def test_a_settled_controller_sums_the_mode_and_its_corrections_to_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    from esenas import feedback

    sparse_calls = []
    real = feedback.StreamedScore._add_sparse
    monkeypatch.setattr(feedback.StreamedScore, "_add_sparse", lambda self, *a: (sparse_calls.append(1), real(self, *a))[1])
    a, b, c, ref = (concentrated() for _ in range(4))
    r = results(a, 7)
    stream(a, r, np.random.default_rng(1).permutation(r.index.size), 40)
    stream(b, r, np.arange(r.index.size)[::-1], 3)
    assert sparse_calls, "rows that mostly agree with the mode take the sparse sum"
    for algo in (a, b):
        algo.tell(r)
    monkeypatch.setattr(feedback, "SPARSE_SHARE", -1.0)  # c: every slice summed element by element
    stream(c, r, np.arange(r.index.size), 5)
    calls = len(sparse_calls)
    c.tell(r)
    assert len(sparse_calls) == calls
    unrounded(ref, r)
    la, lb, lc, lref = (x.controller.logits for x in (a, b, c, ref))  # type: ignore[attr-defined]
    assert np.array_equal(la, lb) and np.array_equal(la, lc)
    np.testing.assert_allclose(la, lref, rtol=0, atol=1e-6)
    assert np.abs(lref - concentrated().controller.logits).max() > 1e-2  # type: ignore[attr-defined]


def test_results_other_than_the_ones_streamed_are_what_the_step_uses() -> None:
    a, ref = after_two(), after_two()
    r = results(a, 7)
    stream(a, r, np.arange(r.index.size), 4)
    changed = Results(r.index, r.reward_pos + 5.0, r.reward_neg, r.steps, r.obs_count, r.obs_sum, r.obs_sumsq)
    a.tell(changed)
    unrounded(ref, changed)
    assert np.array_equal(a.controller.logits, ref.controller.logits)  # type: ignore[attr-defined]


def test_sums_that_could_lose_precision_fall_back_to_the_unrounded_step() -> None:
    a, ref = after_two(), after_two()
    a.controller.baseline = ref.controller.baseline = 1e-9  # type: ignore[attr-defined]
    r = results(a, 7)
    a.tell(r)
    unrounded(ref, r)
    assert np.array_equal(a.controller.logits, ref.controller.logits)  # type: ignore[attr-defined]


def test_a_baseline_out_of_range_is_not_streamed_against_the_step_takes_the_held_one() -> None:
    """The counts were summed against the moving-average baseline; when this iteration's rewards
    put it out of range (esenas.controllers.policy_gradient.BASELINE_RANGE), tell takes the
    unrounded step with the held baseline instead, the same as without streaming."""
    a, ref = after_two(), after_two()
    r = results(a, 7, mean=30_000.0)  # far above the baseline of ~1,000
    stream(a, r, np.arange(r.index.size), 4)
    assert a._feedback is not None and a._feedback.used.all()
    a.tell(r)
    unrounded(ref, r)
    assert np.array_equal(a.controller.logits, ref.controller.logits)  # type: ignore[attr-defined]
    assert a.controller.baseline == ref.controller.baseline > 20_000  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", ["ppo", "stragglers dropped", "first iteration"])
def test_what_cannot_stream_takes_the_unrounded_step(case: str) -> None:
    kw: dict[str, object] = {"algorithm": "ppo"} if case == "ppo" else {}
    if case == "stragglers dropped":
        kw["minPairsFraction"] = 0.5
    a, ref = (chromatic(**kw) if case == "first iteration" else after_two(**kw) for _ in range(2))  # type: ignore[arg-type]
    r = results(a, 7)
    if case == "stragglers dropped":
        keep = np.flatnonzero((r.index % 3 != 0) | (a.ask().items["kind"] == 1))
        r = Results(r.index[keep], r.reward_pos[keep], r.reward_neg[keep], r.steps[keep], r.obs_count, r.obs_sum, r.obs_sumsq)
    stream(a, r, np.arange(r.index.size), 2)
    a.tell(r)
    unrounded(ref, r)
    assert np.array_equal(a.controller.logits, ref.controller.logits)  # type: ignore[attr-defined]
