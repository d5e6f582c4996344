"""The former topology kind ``masked`` (aggregate edge pruning) is ``edges`` everywhere: the CRD
offers only ``edges``, while old job files, saved policies, checkpoints and wire bytes still read."""

from __future__ import annotations

import copy
import struct
from typing import Any

import numpy as np
from esenas.algorithm import ESENAS, Results
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.spec import PolicySpec, openapi_schema, parse_spec
from esenas.topology import KINDS, Topology, decode_topologies, encode_topologies

BASE: dict[str, Any] = {"environment": {"id": "Toy-v0"}, "seed": 5, "es": {"perturbations": 4, "exactEvals": 1}}


def _relabel(x: Any) -> Any:
    """``x`` as an old file wrote it: every ``edges`` kind and topology named ``masked``."""
    if isinstance(x, dict):
        return {k: ("masked" if k in ("kind", "topology") and v == "edges" else _relabel(v)) for k, v in x.items()}
    if isinstance(x, list):
        return [_relabel(v) for v in x]
    return x


def test_the_crd_offers_edges_only() -> None:
    topology = openapi_schema()["properties"]["policy"]["properties"]["topology"]
    assert "masked" not in topology["enum"] and "edges" in topology["enum"]
    assert "masked" not in KINDS


def test_an_old_job_file_reads_masked_as_aggregate_edges() -> None:
    old = parse_spec({**BASE, "policy": {"topology": "masked", "edges": 3, "searchSpace": "independent_edges"}})
    new = parse_spec({**BASE, "policy": {"topology": "edges", "edges": 3}})
    assert old == new and old.policy.topology == "edges" and old.policy.search_space == "aggregate_edges"
    assert old.controller.type == "policy_gradient"  # a searched topology, as before
    assert PolicySpec(topology="masked", edges=3) == new.policy


def test_topologies_and_wire_codes() -> None:
    d = np.array([4, 1, 7])
    assert Topology("masked", d) == Topology("edges", d) and Topology("masked", d).kind == "edges"
    assert Topology.from_json({"kind": "masked", "decisions": [4, 1, 7]}).id == Topology("edges", d).id
    # Codes never move: toeplitz is still 4 and circulant 5; 3, the former masked, reads as edges.
    assert [encode_topologies([Topology(k)])[4] for k in KINDS] == [0, 1, 2, 4, 5]
    legacy = struct.pack("<I", 1) + struct.pack("<BBI", 3, 0, 3) + bytes([4, 1, 7])
    assert decode_topologies(legacy) == [Topology("edges", d)]


def test_a_saved_masked_policy_loads_and_acts_the_same() -> None:
    spec = PolicySpec(template="mlp", hidden_layers=(5,), topology="edges", edges=6)
    arch = Architecture(spec, 3, 2)
    rng = np.random.default_rng(1)
    policy = Policy(arch, arch.search_space().sample(rng), rng.normal(size=arch.num_params))
    old = Policy.from_json(_relabel(policy.to_json()))
    obs = rng.normal(size=(8, 3))
    np.testing.assert_array_equal(old.act(obs), policy.act(obs))
    assert old.topology == policy.topology


def test_an_old_checkpoint_resumes_as_edges() -> None:
    algo = ESENAS(parse_spec({**BASE, "policy": {"topology": "edges", "edges": 4}}), 3, 2)
    rng = np.random.default_rng(2)
    for _ in range(3):
        plan = algo.ask()
        n, pair = plan.items.size, plan.items["kind"] == 0
        algo.tell(Results(plan.items["index"].copy(), rng.normal(size=n), np.where(pair, 0.0, np.nan), np.full(n, 9, np.uint32)))
    state = algo.state_dict()
    old = _relabel(copy.deepcopy(state))
    assert old["spec"]["policy"]["topology"] == "masked" and old["incumbent"]["topology"]["kind"] == "masked"
    resumed = ESENAS.from_state_dict(old)
    a, b = algo.ask(), resumed.ask()
    assert a.topologies == b.topologies and np.array_equal(a.items, b.items) and np.array_equal(a.params, b.params)
