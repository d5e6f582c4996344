"""Runtime: fair first shares, self-balancing later shares, utilisation without per-worker labels."""

from __future__ import annotations

import asyncio

import numpy as np
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.runtime import Lease, Runtime
from esenas_api import wire


def _items(n: int) -> np.ndarray:
    it = np.zeros(n, dtype=wire.WORK_DTYPE)
    it["index"] = np.arange(n)
    it["seed"] = np.arange(1, n + 1)
    return it


def test_808_items_on_100_workers_give_everyone_a_share() -> None:
    async def go() -> list[int]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0)
        for i in range(100):
            rt.seen(f"w{i}")
        rt.start_iteration(0, 0, _items(808), b"params")
        sizes = []
        for i in range(100):
            lease = await rt.pull(64, 0, f"w{i}")
            sizes.append(len(lease.items) // wire.WORK_DTYPE.itemsize)
        return sizes

    sizes = asyncio.run(go())
    assert sum(sizes) == 808 and min(sizes) == 8 and max(sizes) == 9  # never 9 to 89 and 0 to 11


def _answer(rt: Runtime, lease: Lease, worker: str) -> None:
    items = wire.decode_items(lease.items)
    n = len(items)
    out = rt.push(rt.session, lease.iteration, wire.encode_results(items["index"], np.ones(n), np.ones(n), np.full(n, 10), items["topology"]), b"", lease.lease_id, worker)
    assert out.accepted == n


def test_utilisation_counts_workers_whose_last_pull_got_work() -> None:
    async def go() -> tuple[float, float, int]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0)
        rt.start_iteration(0, 0, _items(4), b"params")
        for i in range(4):
            _answer(rt, await rt.pull(1, 0, f"w{i}"), f"w{i}")
        rt.start_iteration(1, 1, _items(2), b"params")
        for i in range(4):
            await rt.pull(1, 0, f"w{i}")  # w0 and w1 get the two items; w2 and w3 nothing
        before = rt.utilization()
        for i in range(1000):  # made-up ids that never hold or return work
            await rt.pull(1, 0, f"spoof-{i}")
        return before, rt.utilization(), rt.connected()

    before, after, connected = asyncio.run(go())
    assert before == 0.5 and after == 0.5 and connected == 4
