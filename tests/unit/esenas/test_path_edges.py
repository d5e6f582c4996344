"""searchSpace path_edges: each decision keeps a whole observation-to-action path or a direct edge."""

from __future__ import annotations

import numpy as np
import pytest
from esenas.network import Architecture
from esenas.spec import PolicySpec, SpecError, parse_spec
from esenas.spec_checks import check_dimensions
from esenas.topology import Topology


def arch(hidden: tuple[int, ...] = (4,), edges: int = 6, obs: int = 3, act: int = 2) -> Architecture:
    return Architecture(PolicySpec("mlp", hidden, "edges", None, edges, "path_edges"), obs, act)


def test_a_path_decision_keeps_its_edges_and_a_direct_decision_its_edge() -> None:
    a = arch()  # layers (3, 4, 2); blocks 0->1 (0-11), 0->2 (12-17), 1->2 (18-25), rows = targets
    assert a.offsets == (0, 12, 18, 26)
    assert a.search_space().num_decisions == 3 and a.search_space().max_choices == 3 * 4 * 2 + 3 * 2
    path = int(np.ravel_multi_index((2, 1, 0), (3, 4, 2)))  # observation 2 -> hidden 1 -> action 0
    direct = 24 + 1 * 3 + 2  # observation 2 -> action 1
    kept = a.kept_edges(Topology("edges", np.array([path, direct], np.int64)))
    assert kept.tolist() == [0 + 1 * 3 + 2, 12 + 1 * 3 + 2, 18 + 0 * 4 + 1]


def test_every_hidden_unit_kept_is_both_fed_and_read() -> None:
    for hidden in ((41,), (8, 8)):
        a = arch(hidden, edges=40, obs=17, act=6)
        rng = np.random.default_rng(0)
        for _ in range(50):
            topo = a.search_space().sample(rng)
            assert topo.decisions.size == 40 // len(a.layers[1:])
            assert 1 <= a.weight_params(topo) <= 40  # shared edges count once
            mats = dict(zip([(b.src, b.dst) for b in a.blocks], a.weights(np.ones(a.num_params), topo)[0], strict=True))
            for layer in range(1, len(a.layers) - 1):
                fed = mats[(layer - 1, layer)].any(axis=1)
                read = mats[(layer, layer + 1)].any(axis=0)
                assert (fed == read).all()


def test_the_spec_needs_a_whole_path_and_an_mlp() -> None:
    spec = parse_spec({"environment": {"id": "HalfCheetah-v5"}, "policy": {
        "template": "mlp", "hiddenLayers": [41, 41], "topology": "edges", "edges": 2, "searchSpace": "path_edges"}})
    errors = check_dimensions(spec, 17, 6)
    assert [(e.path, e.reason) for e in errors] == [
        ("spec.policy.edges", "must be >= 3 with searchSpace path_edges (a path from an observation to an action "
                              "of a [17, 41, 41, 6] network), got 2")]
    small = parse_spec({"environment": {"id": "Pendulum-v1"}, "policy": {
        "template": "mlp", "hiddenLayers": [1], "topology": "edges", "edges": 40, "searchSpace": "path_edges"}})
    assert [(e.path, e.reason) for e in check_dimensions(small, 3, 1)] == [
        ("spec.policy.edges", "must be <= the number of candidate edges (7) of a [3, 1, 1] network, got 40")]
    with pytest.raises(SpecError, match="searchSpace: 'path_edges' needs template 'mlp'"):
        parse_spec({"environment": {"id": "HalfCheetah-v5"}, "policy": {"topology": "edges", "edges": 4, "searchSpace": "path_edges"}})
