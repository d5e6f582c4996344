"""Runtime: fair first shares, self-balancing later shares, utilisation without per-worker labels."""

from __future__ import annotations

import asyncio

import numpy as np
from esenas.api import wire
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.runtime import Runtime


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


def test_utilisation_counts_workers_whose_last_pull_got_work() -> None:
    async def go() -> tuple[float, float]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0)
        for i in range(4):
            rt.seen(f"w{i}")
        rt.start_iteration(0, 0, _items(2), b"params")
        await rt.pull(1, 0, "w0")
        await rt.pull(1, 0, "w1")
        before = rt.utilization()
        rt.queue.ingest(0, wire.decode_results(wire.encode_results([0, 1], [1.0, 1.0], [1.0, 1.0], [5, 5], [0, 0])), None)
        await rt.pull(1, 0, "w0")  # iteration complete: nothing for w0 now
        return before, rt.utilization()

    before, after = asyncio.run(go())
    assert before == 0.5 and after == 0.25
