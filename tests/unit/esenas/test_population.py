"""Large populations: ask/tell at thousands of pairs, and the vectorised helpers behind it."""

from __future__ import annotations

import numpy as np
import pytest
from esenas.algorithm import ESENAS
from esenas.controllers.policy_gradient import PolicyGradient
from esenas.network import Architecture
from esenas.objectives import front_indices
from esenas.results import Results
from esenas.spec import ControllerSpec, parse_spec
from esenas.topology import Topology

OBS, ACT = 17, 6


def chromatic(perturbations: int, controller: str) -> ESENAS:
    spec = parse_spec(
        {
            "environment": {"id": "Toy-v0"},
            "policy": {"template": "mlp", "hiddenLayers": [41], "topology": "partition", "partitions": 17},
            "controller": {"type": controller, **({"algorithm": "reinforce", "learningRate": 40} if controller == "policy_gradient" else {})},
            "es": {"perturbations": perturbations, "exactEvals": 8, "fitnessShaping": "centered_ranks"},
        }
    )
    return ESENAS(spec, OBS, ACT)


@pytest.mark.parametrize("controller", ["policy_gradient", "evolution"])
def test_ten_thousand_pairs_ask_and_tell(controller: str) -> None:
    algo = chromatic(10_000, controller)
    for it in range(2):
        plan = algo.ask()
        n = plan.items.size
        assert n == 10_008
        assert len(plan.topologies) > 1_000  # one sampled topology per pair, not a shared few
        rng = np.random.default_rng(it)
        pair = plan.items["kind"] == 0
        res = Results(
            plan.items["index"].copy(), rng.normal(size=n), np.where(pair, rng.normal(size=n), np.nan),
            np.full(n, 2000, np.uint32), 10.0, np.zeros(OBS), np.ones(OBS),
        )
        report = algo.tell(res)
        assert report.iteration == it
        assert report.episodes == 2 * 10_000 + 8
    assert np.all(np.isfinite(algo.params))
    assert algo.pareto.points  # the front is kept, from the batch's own non-dominated points


def test_sizes_match_size_one_by_one() -> None:
    algo = chromatic(64, "random")
    topos = algo.ask().topologies
    arch: Architecture = algo.arch
    assert arch.sizes(topos).tolist() == [arch.size(t) for t in topos]


def test_front_indices_matches_brute_force() -> None:
    rng = np.random.default_rng(5)
    r, s = rng.normal(size=300).round(1), rng.integers(1, 12, size=300)
    got = {(float(r[i]), int(s[i])) for i in front_indices(r, s)}
    want = set()
    for size in np.unique(s):
        best = r[s == size].max()
        if best > r[s < size].max(initial=-np.inf):  # beats every smaller network
            want.add((float(best), int(size)))
    assert got == want


def test_policy_gradient_samples_in_seeded_blocks_any_holder_can_redraw() -> None:
    from esenas.sampling import SAMPLE_BLOCK, BlockSampler

    arch = chromatic(8, "random").arch
    space = arch.search_space()
    pg = PolicyGradient(space, ControllerSpec(type="policy_gradient"), 0)
    pg.logits = np.random.default_rng(1).normal(size=pg.logits.shape)
    n = 30 * SAMPLE_BLOCK + 5  # a last, partial block
    whole = pg.ask(n, rng=np.random.default_rng(7))
    p0 = pg.probs()[0]
    assert len(whole) == n
    sampler = pg.sampler(n, rng=np.random.default_rng(7))
    assert sampler.seeds.size == 31 and sampler.topologies() == whole
    # a relay holding only the wire form rebuilds any topology alone, bit for bit
    wire = BlockSampler.from_bytes(sampler.to_bytes())
    picks = [n - 1, 0, 3 * SAMPLE_BLOCK + 1, 17, n - 1]
    assert wire.at(picks) == [whole[p] for p in picks]
    pg.logits[:, 0] += 3.0  # a controller update after the snapshot changes nothing drawn from it
    assert wire.at([5]) == [whole[5]] and sampler.draw_block(0) == whole[:SAMPLE_BLOCK]
    freq = np.stack([t.decisions for t in whole]).astype(np.int64)
    first = np.bincount(freq[:, 0], minlength=17) / len(whole)
    assert np.abs(first - p0).max() < 0.035  # 1,925 draws of decision 0
    with pytest.raises(ValueError, match="position"):
        wire.at([n])
    with pytest.raises(ValueError, match="expected"):
        BlockSampler.from_bytes(sampler.to_bytes()[:-1])


def test_topology_is_stored_compactly_with_the_same_id() -> None:
    t8 = Topology("partition", np.array([0, 3, 16], np.uint8))
    t64 = Topology("partition", np.array([0, 3, 16], np.int64))
    assert t8.decisions.dtype == np.uint8 and t64.decisions.dtype == np.uint8
    assert t8 == t64 and t8.id == t64.id == "23f2f8e6a05c3c7a"


def test_history_stays_bounded_and_keeps_the_ends() -> None:
    from esenas.algorithm import thin_history

    hist: list[dict[str, object]] = []
    for i in range(10_000):
        hist = thin_history([*hist, {"iteration": i}], limit=100)
        assert len(hist) <= 100
    its = [h["iteration"] for h in hist]
    assert its[0] == 0 and its[-1] == 9_999 and its == sorted(its)
    assert its[-50:] == list(range(9_950, 10_000))  # the recent half at full resolution


def _vose_row_by_row(p: np.ndarray, choices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias method as a plain loop over rows: the tables relays and older aggregators built."""
    d, c = p.shape
    prob, alias = np.ones((d, c)), np.tile(np.arange(c), (d, 1))
    for i in range(d):
        k = int(choices[i])
        scaled = p[i, :k] * k
        small = [j for j in range(k) if scaled[j] < 1.0]
        large = [j for j in range(k) if scaled[j] >= 1.0]
        while small and large:
            s, big = small.pop(), large[-1]
            prob[i, s], alias[i, s] = scaled[s], big
            scaled[big] -= 1.0 - scaled[s]
            if scaled[big] < 1.0:
                small.append(large.pop())
    return prob, alias


def test_alias_tables_for_all_rows_at_once_are_vose_row_by_row_bit_for_bit() -> None:
    """A relay redraws the aggregator's samples from these tables: any difference in a single
    bit would credit the controller with topologies the workers never ran."""
    from esenas.alias import alias_tables
    from esenas.sampling import softmax_probs

    rng = np.random.default_rng(11)
    for trial in range(200):
        d, c = int(rng.integers(1, 50)), int(rng.integers(1, 30))
        choices = rng.integers(1, c + 1, d)
        logits = rng.normal(size=(d, c)) * rng.choice([0.0, 0.1, 1.0, 5.0, 50.0])
        if trial % 5 == 0:
            logits = np.round(logits)  # ties, and exact 1.0 scaled probabilities
        p = softmax_probs(logits, choices)
        got, want = alias_tables(p, choices), _vose_row_by_row(p, choices)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), trial


def test_alias_sampling_draws_the_softmax() -> None:
    from esenas.alias import alias_tables

    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(5), size=4)
    p[3] = [0.7, 0.3, 0.0, 0.0, 0.0]  # a decision with only 2 valid choices
    choices = np.array([5, 5, 5, 2])
    prob, alias = alias_tables(p, choices)
    # exact: the probability mass the table gives each column equals p
    for i in range(4):
        k = choices[i]
        mass = np.zeros(5)
        for j in range(k):
            mass[j] += prob[i, j] / k
            mass[alias[i, j]] += (1 - prob[i, j]) / k
        assert np.allclose(mass, p[i])


def test_prefetched_perturbations_give_the_same_step() -> None:
    a, b = chromatic(300, "random"), chromatic(300, "random")
    for algo in (a, b):
        plan = algo.ask()
    assert not a.prefetch_perturbations(100)  # partly cached: tell mixes cached and rebuilt rows
    n = plan.items.size
    rng = np.random.default_rng(1)
    pair = plan.items["kind"] == 0
    res = Results(plan.items["index"].copy(), rng.normal(size=n), np.where(pair, rng.normal(size=n), np.nan),
                  np.full(n, 10, np.uint32), 1.0, np.zeros(OBS), np.ones(OBS))
    a.tell(res)
    b.tell(res)
    assert np.array_equal(a.params, b.params)
    plan = a.ask()
    assert b.ask().items.tobytes() == plan.items.tobytes()
    while not a.prefetch_perturbations(1000):
        pass
    assert a._eps_ready == 300  # all cached: tell reads the cache itself, no copy
    res.reward_pos[:] = rng.normal(size=n)
    a.tell(res)
    b.tell(res)
    assert np.array_equal(a.params, b.params)


@pytest.mark.parametrize("per_decision", [False, True], ids=["reinforce weights", "ppo weights"])
def test_the_score_gradient_in_chunks_is_the_one_sum(per_decision: bool) -> None:
    """sum_j w_j (onehot(a_j) - p), here in many chunks of rows, against the plain sum."""
    space = chromatic(8, "random").arch.search_space()
    pg = PolicyGradient(space, ControllerSpec(type="policy_gradient"), 0)
    rng = np.random.default_rng(3)
    actions = np.stack([t.decisions for t in pg.ask(500, rng=rng)])
    weights = rng.normal(size=actions.shape if per_decision else 500)
    p = pg.probs()
    d, c = p.shape
    onehot = np.zeros((500, d, c))
    onehot[np.arange(500)[:, None], np.arange(d)[None, :], actions] = 1.0
    w = weights if per_decision else np.broadcast_to(weights[:, None], actions.shape)
    want = (w[:, :, None] * (onehot - p[None])).sum(axis=0)
    assert 500 * d > 4 * (1 << 16), "several chunks"
    np.testing.assert_allclose(pg._score_grad(actions, weights, p), want, atol=1e-9)
