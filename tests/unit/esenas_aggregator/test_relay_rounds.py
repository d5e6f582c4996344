"""The relay's round bookkeeping: renumbering an upstream lease, results back in upstream terms,
topologies by their upstream index, and the local parameter version (esenas_aggregator.relay)."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from esenas.topology import Topology, decode_topologies
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.relay import Relay, Round, TopologyTable, local_items, upstream_results
from esenas_aggregator.runtime import Runtime
from esenas_api import wire
from esenas_api.v1 import aggregator_pb2 as pb

from tests.unit.esenas_aggregator.workitems import work_items


def _upstream_lease() -> np.ndarray:
    """Items 100..105 of an upstream iteration: four pairs and two exact evals."""
    items = work_items(100, exact=6)[100:].copy()
    items["kind"][:4] = wire.KIND_PAIR
    items["seed"][:4] = [11, 12, 13, 14]
    items["topology"] = [7, 9, 7, 40, 9, 40]
    return items


def test_local_items_renumber_from_zero_and_keep_seed_kind_and_topology() -> None:
    up = _upstream_lease()
    local = local_items(up)
    assert local["index"].tolist() == [0, 1, 2, 3, 4, 5]
    for field in ("seed", "topology", "kind"):
        assert local[field].tolist() == up[field].tolist()
    assert up["index"].tolist() == list(range(100, 106))  # the lease itself is untouched


def test_a_finished_round_goes_back_with_upstream_indices_and_summed_statistics() -> None:
    up = _upstream_lease()
    rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=2)
    rt.start_iteration(3, 1, local_items(up), b"params")
    q = rt.queue
    leased = q.lease(6, now=0.0)
    rnd = Round(1, 8, 5, up["index"].copy(), up["topology"].copy())
    # Two workers' batches, in any order, each with its own observation statistics.
    for part, obs in ((leased[3:], (10.0, [1.0, 2.0], [3.0, 4.0])), (leased[:3], (5.0, [0.5, 0.5], [1.0, 1.0]))):
        rec = np.zeros(len(part), dtype=wire.RESULT_DTYPE)
        rec["index"] = part["index"]
        rec["reward_pos"] = 100.0 + part["index"]
        rec["reward_neg"] = np.where(part["kind"] == wire.KIND_EXACT, np.nan, -1.0 * part["index"])
        rec["steps"] = 3
        rec["topology"] = part["topology"]
        out = q.ingest(3, rec, (obs[0], np.array(obs[1]), np.array(obs[2])))
        assert out.accepted == len(part)
    results, obs_bytes = upstream_results(rnd, rt.queue)
    back = wire.decode_results(results)
    assert back["index"].tolist() == list(range(100, 106))
    assert back["topology"].tolist() == [7, 9, 7, 40, 9, 40]
    assert back["reward_pos"].tolist() == [100.0 + i for i in range(6)]
    assert back["reward_neg"][:4].tolist() == [0.0, -1.0, -2.0, -3.0]
    count, total, sumsq = wire.decode_obs_stats(obs_bytes, 2)
    assert count == 15.0 and total.tolist() == [1.5, 2.5] and sumsq.tolist() == [4.0, 5.0]


def test_the_topology_table_is_keyed_by_upstream_index_and_checks_its_lengths() -> None:
    a, b = Topology("partition", np.array([0, 1, 2], np.uint8)), Topology("partition", np.array([2, 2, 0], np.uint8))
    table = TopologyTable(np.array([40, 7], np.uint32), [a, b])
    assert table[40] == a and table[7] == b and len(table) == 2 and set(table) == {40, 7}
    with pytest.raises(wire.WireError, match="topologies: 1 for 2 indices"):
        TopologyTable(np.array([40, 7], np.uint32), [a])


def test_the_relay_serves_the_round_s_topologies_to_its_workers() -> None:
    """A worker's lease from the relay names the upstream topology indices and carries them."""
    up = _upstream_lease()
    a, b, c = (Topology("partition", np.array([k, k, 1], np.uint8)) for k in (0, 1, 2))
    table = TopologyTable(np.array([7, 9, 40], np.uint32), [a, b, c])

    async def go() -> tuple[np.ndarray, list[Topology], np.ndarray]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0)
        rt.start_iteration(1, 1, local_items(up), b"params", table)
        lease = await rt.pull(3, 0, "w0")
        return np.frombuffer(lease.topology_index, "<u4"), decode_topologies(lease.topologies), wire.decode_items(lease.items)

    index, topos, items = asyncio.run(go())
    assert set(items["topology"].tolist()) <= set(index.tolist())
    assert dict(zip(index.tolist(), topos, strict=True)) == {i: table[i] for i in index.tolist()}


def test_workers_see_a_new_parameter_version_whenever_the_aggregator_s_session_or_version_changes() -> None:
    async def go() -> list[int]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0)
        async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:  # never dialled here
            relay = Relay(rt, channel, "token", "relay-0", lease_items=64, round_timeout=60.0)
            seen = []
            for session, version in ((5, 3), (5, 3), (5, 4), (6, 4), (6, 4)):  # (6, 4): a restarted aggregator
                relay._set_params(pb.Params(session=session, version=version))
                seen.append(relay._local_version)
            return seen

    assert asyncio.run(go()) == [1, 1, 2, 3, 3]
