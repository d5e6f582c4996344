"""A sampling controller's plan draws its topologies lazily: ``ask`` draws none, and drawing
and grouping them (in slices while workers roll out, or all at ``tell``) changes no result."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from esenas.algorithm import ESENAS
from esenas.best import incumbent_evals
from esenas.results import Results
from esenas.sampling import SampledTable
from esenas.spec import parse_spec
from esenas.topology import Topology, group_by_topology

OBS, ACT = 17, 6
POLICIES = {
    "partition": {"template": "mlp", "hiddenLayers": [41], "topology": "partition", "partitions": 17},
    "edges": {"template": "mlp", "hiddenLayers": [41], "topology": "edges", "edges": 40},
}


def make(policy: str, pairs: int = 300, exact: int = 3) -> ESENAS:
    spec = parse_spec(
        {
            "environment": {"id": "Toy-v0"},
            "policy": POLICIES[policy],
            "controller": {"type": "policy_gradient", "learningRate": 40},
            "es": {"perturbations": pairs, "exactEvals": exact, "minPairsFraction": 0.8},
        }
    )
    return ESENAS(spec, OBS, ACT)


def results_for(plan_items: np.ndarray, table: list[Topology], seed: int) -> Results:
    """Rewards that depend on each item's topology, so the controller has something to learn."""
    n = plan_items.size
    rng = np.random.default_rng(seed)
    base = np.array([float(table[int(t)].decisions.mean()) for t in plan_items["topology"]])
    pair = plan_items["kind"] == 0
    return Results(
        plan_items["index"].copy(), 10 * base + rng.normal(size=n), np.where(pair, 10 * base + rng.normal(size=n), np.nan),
        np.full(n, 1000, np.uint32), 1000.0 * n, np.zeros(OBS), np.ones(OBS) * n,
    )


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_ask_draws_nothing_and_each_item_has_its_own_sample(policy: str) -> None:
    algo = make(policy, pairs=2_000)
    plan = algo.ask()
    table = plan.topologies
    assert isinstance(table, SampledTable)
    assert plan.sampler is not None and not plan.sampler._cache  # nothing drawn at the barrier
    assert plan.items["topology"].tolist() == list(range(plan.items.size))
    # entries are samples but for the first k exact evals, which re-score the first topology
    # (no incumbent yet) and so are no sample (-1)
    n, k = 2_000, incumbent_evals(algo.spec.es.exact_evals)
    expected = list(range(n)) + [-1] * k + list(range(n + k, plan.items.size))
    assert plan.sample_position is not None and plan.sample_position.tolist() == expected
    probe = [0, 63, 64, 1_000, 2_002]  # blocks 0, 1, 15 and 31 (2,000 and 2,001: the first topology)
    assert [table[p] for p in probe] == plan.sampler.at(probe)  # what a relay rebuilds from the position
    assert len(plan.sampler._cache) == 4  # only the blocks those entries fall in
    with pytest.raises(IndexError):
        table[plan.items.size]


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_grouping_in_slices_matches_grouping_the_drawn_list_and_keeps_the_incumbent(policy: str) -> None:
    algo = make(policy)
    table = algo.ask().topologies
    assert isinstance(table, SampledTable)
    algo.tell(results_for(algo.ask().items, list(table), 0))
    assert algo.incumbent.topology is not None
    plan = algo.ask()
    table = plan.topologies
    assert isinstance(table, SampledTable)
    n = algo.spec.es.perturbations
    assert table[n] == table[n + 1] == algo.incumbent.topology  # 2 of the 3 exact evals re-score it
    assert plan.sample_position is not None and plan.sample_position[n:].tolist() == [-1, -1, n + 2]
    drawn = plan.sampler.topologies() if plan.sampler is not None else []
    drawn[n] = drawn[n + 1] = algo.incumbent.topology
    want_unique, want_index = group_by_topology(drawn)
    done = [algo.prefetch_topologies(1) for _ in range(3)]
    assert done == [False, False, False]
    while not algo.prefetch_topologies(2):
        pass
    unique, index = table.grouped()
    assert unique == want_unique and index.tolist() == want_index.tolist()
    assert table.sizes().tolist() == algo.arch.sizes(want_unique).tolist()  # measured while grouping
    drawn_again: list[int] = []
    block = table._block
    table._block = lambda b: drawn_again.append(b) or block(b)  # type: ignore[method-assign]
    assert table.group(5) is True and table.grouped()[0] == want_unique
    assert drawn_again == []  # once grouped, asking again (the prefetch loop, tell) redoes nothing
    assert table.all() == drawn
    # a lease's entries in one pass: the samples and the incumbent, as indexing them one by one
    lease = np.array([0, 63, 64, n - 1, n, n + 1])
    assert table.take(lease) == [table[int(i)] for i in lease] == [drawn[int(i)] for i in lease]
    assert table.take(lease)[4] is algo.incumbent.topology


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_prefetching_topologies_changes_no_result(policy: str) -> None:
    """The same run with and without drawing ahead (the aggregator does; the local trainer does
    not), and with a straggler-shortened iteration: identical weights, controller and reports."""
    runs = []
    for prefetch in (False, True):
        algo = make(policy)
        reports = []
        for it in range(4):
            plan = algo.ask()
            if prefetch:
                while not algo.prefetch_topologies(1):
                    pass
            res = results_for(plan.items, list(plan.topologies), it)
            if it == 2:  # a tenth of the pairs never came back
                keep = np.arange(res.index.size) >= 30
                res = dataclasses.replace(
                    res, index=res.index[keep], reward_pos=res.reward_pos[keep], reward_neg=res.reward_neg[keep], steps=res.steps[keep]
                )
            reports.append(algo.tell(res).to_json())
        runs.append((algo.params.copy(), algo.controller.state_dict(), reports, algo.best))
    (p0, c0, r0, b0), (p1, c1, r1, b1) = runs
    assert np.array_equal(p0, p1)
    assert r0 == r1 and b0 == b1
    assert c0.keys() == c1.keys() and all(np.array_equal(np.asarray(c0[k]), np.asarray(c1[k])) for k in c0)


def test_a_controller_that_does_not_sample_in_blocks_keeps_a_grouped_list() -> None:
    spec = parse_spec({"environment": {"id": "Toy-v0"}, "policy": POLICIES["partition"], "controller": {"type": "evolution"}})
    algo = ESENAS(spec, OBS, ACT)
    plan = algo.ask()
    assert isinstance(plan.topologies, list) and plan.sampler is None
    assert algo.prefetch_topologies(1) is True
