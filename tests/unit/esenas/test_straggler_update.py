"""The ES update of an iteration closed without its stragglers (es.minPairsFraction < 1):
only the pairs that arrived count, the step divides by their number, top-b picks among them,
and the controller hears only their topologies."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from esenas import es
from esenas.algorithm import ESENAS, Results
from esenas.results import KIND_PAIR, Carried
from esenas.spec import JobSpec, parse_spec
from esenas.topology import Topology

OBS, ACT = 4, 2
PAIRS, EXACT = 16, 2


def spec(fraction: float, top: int | None = 0, shaping: str = "none") -> JobSpec:
    """``top`` None leaves es.topDirections unset: a quarter of the pairs in each update, on a task
    that starts from one state (HalfCheetah's id; the toy task would get all pairs, es_defaults)."""
    job = _job(fraction, top, shaping)
    if top is None:
        del job["es"]["topDirections"]
        job["environment"]["id"] = "HalfCheetah-v5"
    return parse_spec(job)


def _job(fraction: float, top: int | None, shaping: str) -> dict[str, Any]:
    return {
        "environment": {"id": "Toy-v0"},
        "seed": 5,
        "policy": {"template": "mlp", "hiddenLayers": [5], "topology": "partition", "partitions": 3},
        "controller": {"type": "evolution"},
        "es": {
            "sigma": 0.05, "stepSize": 0.1, "perturbations": PAIRS, "exactEvals": EXACT,
            "optimizer": "sgd", "fitnessShaping": shaping, "topDirections": top,
            "minPairsFraction": fraction, "observationNormalization": False,
        },
    }


def results(algo: ESENAS, drop: list[int]) -> Results:
    """Made-up rewards for every item but the pairs in ``drop``, in reverse order."""
    plan = algo.ask()
    n = plan.items.size
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(size=n), rng.normal(size=n)
    neg[plan.items["kind"] != KIND_PAIR] = np.nan
    keep = np.setdiff1d(np.arange(n), drop)[::-1]
    return Results(plan.items["index"][keep].copy(), pos[keep], neg[keep], np.full(keep.size, 7, np.uint32))


DROP = [3, 7, 8, 15]


def test_update_uses_only_the_pairs_in_and_divides_by_their_number() -> None:
    a = ESENAS(spec(0.75), OBS, ACT)
    plan = a.ask()
    r = results(a, DROP)
    before = a.params.copy()
    kept = np.setdiff1d(np.arange(PAIRS), DROP)
    order = np.argsort(r.index)
    rp = r.reward_pos[order][: kept.size]
    rn = r.reward_neg[order][: kept.size]
    eps = es.perturbations(plan.items["seed"][kept], a.arch.num_params)
    expected = before + 0.1 * ((rp - rn) @ eps) / kept.size
    report = a.tell(r)
    np.testing.assert_allclose(a.params, expected, rtol=1e-12, atol=1e-12)
    assert report.episodes == 2 * kept.size + EXACT
    assert report.env_steps == 7 * (kept.size + EXACT)
    assert a.iteration == 1


def test_prefetched_perturbations_map_to_the_pairs_that_arrived() -> None:
    a, b = ESENAS(spec(0.75, shaping="zscore"), OBS, ACT), ESENAS(spec(0.75, shaping="zscore"), OBS, ACT)
    assert b.prefetch_perturbations(PAIRS)
    a.tell(results(a, DROP))
    b.tell(results(b, DROP))
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize(("top", "b"), [(4, 4), (None, 3)], ids=["set", "unset: a quarter of the 12 in"])
def test_top_directions_pick_among_the_pairs_in(top: int | None, b: int) -> None:
    a = ESENAS(spec(0.75, top=top), OBS, ACT)
    plan = a.ask()
    r = results(a, DROP)
    order = np.argsort(r.index)
    idx = r.index[order].astype(np.int64)[: PAIRS - len(DROP)]
    rp, rn = r.reward_pos[order][: idx.size], r.reward_neg[order][: idx.size]
    sel = es.top_directions(rp, rn, b)
    assert sel.size == b and not np.isin(idx[sel], DROP).any()
    eps = es.perturbations(plan.items["seed"][idx[sel]], a.arch.num_params)
    expected = a.params + 0.1 * ((rp[sel] - rn[sel]) @ eps) / b
    a.tell(r)
    np.testing.assert_allclose(a.params, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("configured", "pairs", "b"), [(None, 64, 16), (None, 32, 8), (None, 33, 9), (None, 3, 1), (None, 1, 1), (0, 64, 0), (5, 64, 5)])
def test_top_count_is_the_setting_or_a_quarter_of_the_pairs(configured: int | None, pairs: int, b: int) -> None:
    assert es.top_count(configured, pairs) == b


def test_controller_hears_only_the_pairs_that_arrived(monkeypatch: pytest.MonkeyPatch) -> None:
    a = ESENAS(spec(0.75), OBS, ACT)
    plan = a.ask()
    heard: list[list[Topology]] = []
    monkeypatch.setattr(a.controller, "tell_indexed", lambda topos, index, fit: heard.append([topos[i] for i in index.tolist()]))
    a.tell(results(a, DROP))
    kept = PAIRS - len(DROP)
    assert len(heard) == 1 and len(heard[0]) == 2 * kept + EXACT
    ids = [plan.topologies[int(t)].id for t in plan.items["topology"]]
    expected = [ids[i] for i in range(PAIRS) if i not in DROP]
    assert [t.id for t in heard[0][:kept]] == expected


def test_too_few_pairs_or_a_missing_exact_eval_is_refused() -> None:
    a = ESENAS(spec(0.75), OBS, ACT)
    with pytest.raises(ValueError, match="at least 12 of 16 pairs"):
        a.tell(results(a, [0, 1, 2, 3, 4]))  # 11 of 16
    with pytest.raises(ValueError, match="every exact eval"):
        a.tell(results(a, [PAIRS]))  # the first exact eval
    assert a.iteration == 0
    full = ESENAS(spec(1.0), OBS, ACT)
    with pytest.raises(ValueError, match="at least 16 of 16"):
        full.tell(results(full, [0]))


def test_min_pairs_rounds_up_and_keeps_at_least_one() -> None:
    assert es.min_pairs(10, 0.9) == 9  # 0.9 * 10 is 9.000000000000002 in floats
    assert es.min_pairs(16, 0.75) == 12
    assert es.min_pairs(17, 0.75) == 13
    assert es.min_pairs(1, 0.5) == 1
    assert es.min_pairs(0, 0.5) == 0
    assert es.min_pairs(80_000, 1.0) == 80_000


def test_pairs_carried_from_the_previous_iteration_join_the_step_after_the_plans() -> None:
    """Pairs that arrived after their iteration closed (esenas.results.Carried) count in the next
    step: their rows of eps come from their own seeds, the step divides by all pairs used, top-b
    picks among all of them, and their env steps and episodes count; the prefetch changes nothing."""
    a, b = ESENAS(spec(0.75, top=6), OBS, ACT), ESENAS(spec(0.75, top=6), OBS, ACT)
    plan = a.ask()
    carried = Carried(np.array([11, 22, 33], np.uint64), np.array([3.0, -1.0, 2.5]), np.array([-2.0, 0.0, 0.4]),
                      np.array([100, 50, 9], np.uint32))
    r = results(a, DROP)
    order = np.argsort(r.index)
    idx = r.index[order].astype(np.int64)[: PAIRS - len(DROP)]
    rp = np.concatenate([r.reward_pos[order][: idx.size], carried.reward_pos])
    rn = np.concatenate([r.reward_neg[order][: idx.size], carried.reward_neg])
    sel = es.top_directions(rp, rn, 6)
    assert (sel >= idx.size).sum() == 2  # two of the carried pairs are among the best 6
    seeds = np.concatenate([plan.items["seed"][idx], carried.seeds])
    expected = a.params + 0.1 * ((rp[sel] - rn[sel]) @ es.perturbations(seeds[sel], a.arch.num_params)) / 6
    report = a.tell(r, carried=carried)
    np.testing.assert_allclose(a.params, expected, rtol=1e-12, atol=1e-12)
    assert report.episodes == 2 * (idx.size + 3) + EXACT and report.env_steps == 7 * (idx.size + EXACT) + 159
    assert b.prefetch_perturbations(PAIRS)
    b.tell(results(b, DROP), carried=carried)
    np.testing.assert_array_equal(a.params, b.params)
