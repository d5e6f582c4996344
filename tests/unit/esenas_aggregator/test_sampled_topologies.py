"""Sampled topologies on the wire: a relay gets sample positions instead of decisions and draws
the same topologies the aggregator's plan holds (esenas.sampling, esenas_aggregator.topologies)."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from esenas.algorithm import ESENAS
from esenas.sampling import BlockSampler
from esenas.spec import parse_spec
from esenas.topology import Topology, decode_topologies
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.relay import Relay, round_topologies
from esenas_aggregator.runtime import Runtime
from esenas_aggregator.topologies import IterationTopologies
from esenas_api import wire
from esenas_api.v1 import aggregator_pb2 as pb

POLICIES = {
    "chromatic": {"template": "mlp", "hiddenLayers": [8], "topology": "partition", "partitions": 5},
    "edges": {"template": "mlp", "hiddenLayers": [8], "topology": "edges", "edges": 12, "searchSpace": "aggregate_edges"},
}


def _plan_with_incumbent(policy: str) -> tuple[ESENAS, Topology]:
    spec = parse_spec({
        "environment": {"id": "Toy-v0"},
        "policy": POLICIES[policy],
        "controller": {"type": "policy_gradient"},
        "es": {"perturbations": 300, "exactEvals": 4},
    })
    algo = ESENAS(spec, 6, 2)
    incumbent = algo.space.sample(np.random.default_rng(5))
    algo.incumbent.topology = incumbent  # item 300 re-scores it: a topology that is not a sample
    return algo, incumbent


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_relay_rebuilds_every_leased_topology_from_positions_alone(policy: str) -> None:
    algo, incumbent = _plan_with_incumbent(policy)
    plan = algo.ask()
    assert plan.sampler is not None and plan.sample_position is not None
    assert plan.sample_position[plan.items["topology"][300]] == -1  # the incumbent
    sampling = pb.Params(version=plan.version, topology_sampler=plan.sampler.to_bytes()).SerializeToString()
    table = IterationTopologies(plan.topologies, plan.sample_position, sampling)
    sampler = BlockSampler.from_bytes(pb.Params.FromString(sampling).topology_sampler)
    rng = np.random.default_rng(0)
    for leased in (plan.items[290:304], plan.items[rng.choice(304, 40, replace=False)]):
        index, blob, pairs = table.payload(leased, samples=True)
        reply = pb.ExchangeReply(topology_index=index, topologies=blob, topology_samples=pairs)
        got = round_topologies(reply, sampler)
        want = {int(t): plan.topologies[int(t)] for t in np.unique(leased["topology"])}
        assert dict(got) == want
        sent = decode_topologies(blob) if blob else []
        assert all(t == incumbent for t in sent)  # decisions travel only for what is not a sample
        assert len(pairs) == 8 * (len(want) - len(sent))
    # a worker (no samples) gets every topology as decisions
    index, blob, pairs = table.payload(plan.items[:10], samples=False)
    assert pairs == b"" and decode_topologies(blob) == [plan.topologies[int(i)] for i in np.frombuffer(index, "<u4")]


def test_sample_positions_without_the_sampler_are_refused() -> None:
    reply = pb.ExchangeReply(topology_samples=np.array([[0, 1]], "<u4").tobytes())
    with pytest.raises(wire.WireError, match="topology samples"):
        round_topologies(reply, None)


def test_only_callers_that_sample_get_the_sampler_and_a_relay_passes_it_to_no_worker() -> None:
    algo, _ = _plan_with_incumbent("chromatic")
    plan = algo.ask()
    assert plan.sampler is not None
    plain = pb.Params(session=3, version=1).SerializeToString()
    sampling = plain + pb.Params(topology_sampler=plan.sampler.to_bytes()).SerializeToString()

    async def go() -> tuple[bytes | None, bytes | None, Relay]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0)
        rt.start_iteration(0, 1, plan.items, plain, IterationTopologies(plan.topologies, plan.sample_position, sampling))
        async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:  # never dialled here
            relay = Relay(Runtime(Metrics("j", "ns"), 60.0, 0), channel, "token", "relay-0", 64, 60.0)
            relay._set_params(pb.Params.FromString(sampling))
            request = relay._request()
        assert request.samples_topologies
        return rt.params_for(False), rt.params_for(True), relay

    for_worker, for_relay, relay = asyncio.run(go())
    assert for_worker == plain and pb.Params.FromString(for_relay or b"").topology_sampler == plan.sampler.to_bytes()
    assert pb.Params.FromString(for_relay or b"").session == 3  # the merge keeps the version's fields
    assert relay._sampler is not None and relay._sampler.at([7]) == plan.sampler.at([7])
    assert relay._params.topology_sampler == b"" and relay._params.session == 3  # what its workers get
