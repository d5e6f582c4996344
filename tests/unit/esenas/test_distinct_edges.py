"""Edge-pruning spaces keep exactly k distinct edges: fresh samples, mutations, policy gradient.

A repeated edge is one edge: ``kept_edges`` counts it once, so a topology with a repeat trains
fewer than k numbers (the HalfCheetah edge runs trained 61-62 edges for 64).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from esenas.algorithm import ESENAS
from esenas.controllers import make_controller
from esenas.controllers.policy_gradient import PolicyGradient
from esenas.network import Architecture
from esenas.results import Results
from esenas.spec import ControllerSpec, PolicySpec, parse_spec
from esenas.topology import SearchSpace, Topology

OBS, ACT = 4, 2
SPACES = ["aggregate_edges", "independent_edges", "residual_edges"]


def arch(search_space: str, edges: int = 6) -> Architecture:
    return Architecture(PolicySpec("mlp", (3,), "edges", None, edges, search_space), OBS, ACT)


def distinct(space: SearchSpace, t: Topology) -> bool:
    """No group of ``t`` repeats a choice."""
    groups = space.group_ids()
    return all(np.unique(t.decisions[groups == g]).size == np.count_nonzero(groups == g) for g in np.unique(groups))


@pytest.mark.parametrize("search_space", SPACES)
def test_fresh_samples_keep_k_edges(search_space: str) -> None:
    a = arch(search_space)
    space, g = a.search_space(), np.random.default_rng(0)
    per_group = 6 * (len(a.blocks) if search_space == "independent_edges" else 1)
    for _ in range(200):
        t = space.sample(g)
        assert distinct(space, t)
        assert a.weight_params(t) == per_group


@pytest.mark.parametrize("search_space", SPACES)
def test_mutations_keep_k_distinct_edges(search_space: str) -> None:
    # 6 of the 6 edges of the smallest layer (3 x 2) in independent_edges: a mutation there has
    # nowhere to go and must not collide; elsewhere a high rate makes collisions likely.
    a = arch(search_space)
    space, g = a.search_space(), np.random.default_rng(1)
    t = space.sample(g)
    changed = 0
    for _ in range(300):
        m = space.mutate(t, 0.5, g)
        space.validate(m)
        assert distinct(space, m), m.decisions
        changed += m != t
        t = m
    assert changed > 250  # mutation still mutates


def test_mutation_of_a_tight_space_moves_to_the_free_edge() -> None:
    space = SearchSpace("edges", np.full(4, 5, np.int64), distinct=True)
    g = np.random.default_rng(2)
    for _ in range(100):
        m = space.mutate(Topology("edges", [0, 1, 2, 3]), 0.01, g)
        assert sorted(m.decisions.tolist()) != [0, 1, 2, 3] and 4 in m.decisions.tolist()
        assert np.unique(m.decisions).size == 4


def test_evolution_children_keep_k_distinct_edges() -> None:
    space = SearchSpace("edges", np.full(8, 10, np.int64), distinct=True)
    ctrl = make_controller(ControllerSpec(type="evolution", population_size=4, mutation_rate=0.5), space, 0)
    for _ in range(30):
        topos = ctrl.ask(8)
        assert all(np.unique(t.decisions).size == 8 for t in topos)
        ctrl.tell(topos, [float(t.decisions.sum()) for t in topos])


def test_policy_gradient_samples_keep_k_distinct_edges_when_every_decision_wants_one_edge() -> None:
    # Every decision's softmax puts ~all its mass on edge 7: independent draws repeat it k times.
    space = SearchSpace("edges", np.full(5, 20, np.int64), distinct=True)
    pg = PolicyGradient(space, ControllerSpec(type="policy_gradient"), 0)
    pg.logits[:, 7] = 20.0
    topos = pg.ask(300, rng=np.random.default_rng(3))
    assert all(np.unique(t.decisions).size == 5 for t in topos)
    assert all(7 in t.decisions.tolist() for t in topos)  # the preferred edge is still taken


def test_policy_gradient_redraws_follow_the_decisions_distribution() -> None:
    # Decisions 0 and 1 both prefer edge 0; decision 1's second choice is edge 9. When decision 1
    # repeats edge 0 it must be redrawn from its own softmax over the unused edges: edge 9.
    space = SearchSpace("edges", np.full(2, 10, np.int64), distinct=True)
    pg = PolicyGradient(space, ControllerSpec(type="policy_gradient"), 0)
    pg.logits[:, 0] = 20.0
    pg.logits[1, 9] = 15.0
    topos = pg.ask(200, rng=np.random.default_rng(4))
    assert all(t.decisions.tolist() == [0, 9] for t in topos)


def test_policy_gradient_keeps_distinct_edges_per_group_in_independent_edges() -> None:
    a = arch("independent_edges", edges=3)
    pg = PolicyGradient(a.search_space(), ControllerSpec(type="policy_gradient"), 0)
    pg.logits[:, 1] = 30.0  # every decision of every layer wants its layer's edge 1
    topos = pg.ask(100, rng=np.random.default_rng(5))
    assert all(a.weight_params(t) == 3 * len(a.blocks) for t in topos)


CONTROLLER_SETTINGS: dict[str, dict[str, Any]] = {
    "evolution": {"populationSize": 4, "mutationRate": 0.5},
    "policy_gradient": {"algorithm": "reinforce", "learningRate": 40},
}


@pytest.mark.parametrize("ctype", ["policy_gradient", "evolution", "random"])
def test_every_topology_of_a_training_run_keeps_k_edges(ctype: str) -> None:
    raw = {
        "environment": {"id": "Toy-v0"},
        "policy": {"template": "mlp", "hiddenLayers": [3], "topology": "edges", "edges": 9},
        "controller": {"type": ctype, **CONTROLLER_SETTINGS.get(ctype, {})},
        "es": {"perturbations": 16, "exactEvals": 2},
    }
    algo = ESENAS(parse_spec(raw), OBS, ACT)
    g = np.random.default_rng(6)
    for _ in range(8):
        plan = algo.ask()
        assert all(algo.arch.weight_params(t) == 9 for t in plan.topologies)
        # reward the first edges so a learning controller concentrates (and repeats, unrepaired)
        score = np.array([-float(np.sort(t.decisions)[:3].sum()) for t in plan.topologies])
        r = score[plan.items["topology"].astype(int)] + g.normal(0, 0.1, plan.items.size)
        neg = np.where(plan.items["kind"] == 0, r, np.nan)
        algo.tell(Results(plan.items["index"].copy(), r, neg, np.full(plan.items.size, 10, np.uint32)))
