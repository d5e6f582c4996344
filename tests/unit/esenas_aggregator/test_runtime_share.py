"""Runtime: fair first shares, self-balancing later shares, utilisation without per-worker labels."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from esenas_aggregator.leases import Lease
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.runtime import Runtime
from esenas_api import wire


def _items(n: int) -> np.ndarray:
    it = np.zeros(n, dtype=wire.WORK_DTYPE)
    it["index"] = np.arange(n)
    it["seed"] = np.arange(1, n + 1)
    return it


def test_808_items_on_100_workers_give_everyone_a_share() -> None:
    async def go() -> list[int]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0)
        await _prove(rt, [f"w{i}" for i in range(100)])  # shares are sized from proven workers
        rt.start_iteration(1, 1, _items(808), b"params")
        sizes = []
        for i in range(100):
            lease = await rt.pull(64, 0, f"w{i}")
            sizes.append(len(lease.items) // wire.WORK_DTYPE.itemsize)
        return sizes

    sizes = asyncio.run(go())
    assert sum(sizes) == 808 and min(sizes) == 8 and max(sizes) == 9  # never 9 to 89 and 0 to 11


async def _prove(rt: Runtime, workers: list[str]) -> None:
    """An iteration 0 in which each of ``workers`` returns one accepted result."""
    rt.start_iteration(0, 0, _items(len(workers)), b"params")
    for w in workers:
        _answer(rt, await rt.pull(1, 0, w), w)


def test_made_up_ids_hold_at_most_half_an_iteration_and_are_counted() -> None:
    metrics = Metrics("j", "ns")

    async def go() -> tuple[int, bool, int]:
        rt = Runtime(metrics, item_timeout=60.0, obs_dim=0, max_lease_items=4)
        await _prove(rt, ["a", "b"])
        rt.start_iteration(1, 1, _items(17), b"params")
        hoarded = 0
        for i in range(50):  # a fresh id for every pull, never answering
            hoarded += len((await rt.pull(4096, 0, f"sybil-{i}")).items) // wire.WORK_DTYPE.itemsize
        for _ in range(40):  # the proven workers finish the iteration, backing up the hoarded items
            for w in ("a", "b"):
                lease = await rt.pull(4096, 0, w)
                if lease.items:
                    _answer(rt, lease, w)
            await asyncio.sleep(0.001)
        return hoarded, rt.queue.complete, rt.connected()

    hoarded, complete, connected = asyncio.run(go())
    assert hoarded == 8  # made-up ids hold half the iteration together, never all of it
    assert complete  # the abandon rule, timed by iteration 0's median, backed their items up
    assert connected == 2  # the ids that hold items are not workers connected
    labels = {"esenas_job": "j", "esenas_namespace": "ns"}
    assert metrics.registry.get_sample_value("esenas_leases_probation_refused_total", labels) == 48
    assert metrics.registry.get_sample_value("esenas_items_speculative_total", labels) == 8


def _answer(rt: Runtime, lease: Lease, worker: str) -> None:
    items = wire.decode_items(lease.items)
    n = len(items)
    out = rt.push(rt.session, lease.iteration, wire.encode_results(items["index"], np.ones(n), np.ones(n), np.full(n, 10), items["topology"]), b"", lease.lease_id, worker)
    assert out.accepted == n


def test_utilisation_counts_workers_whose_last_pull_got_work() -> None:
    async def go() -> tuple[float, float, int]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0)
        # No backup copies: iteration 0's results come back within microseconds, so a lease some
        # microseconds old already looks abandoned, and w2 would get a copy of w0's item (0.75).
        rt.queue.abandon_factor = rt.queue.straggler_factor = math.inf
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


def test_a_lease_holds_the_smaller_of_the_workers_batch_size_and_the_one_the_aggregator_started_with() -> None:
    """workers.batchSize edits (docs/contracts.md, Leases): a worker restarted with a lower value
    gets leases that small at once; a higher one is capped until the aggregator restarts."""

    async def go() -> tuple[int, int]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0, max_lease_items=8)
        rt.start_iteration(0, 0, _items(100), b"params")
        lowered = await rt.pull(4, 0, "w0")
        raised = await rt.pull(64, 0, "w1")
        size = wire.WORK_DTYPE.itemsize
        return len(lowered.items) // size, len(raised.items) // size

    assert asyncio.run(go()) == (4, 8)


def test_the_broadcast_runs_from_an_iteration_s_start_to_its_last_first_lease() -> None:
    from esenas_aggregator.roster import Roster

    roster = Roster(window=60.0)
    assert roster.new_iteration(now=100.0) is None  # nothing before the first iteration
    roster.serve("a", now=100.2)
    roster.serve("b", now=100.7)
    roster.serve("a", now=103.0)  # a's second lease (its rest of the iteration, a backup): not a first
    assert roster.new_iteration(now=104.0) == pytest.approx(0.7)
    assert roster.new_iteration(now=110.0) is None  # an iteration that served no one has none


def test_the_runtime_exports_each_iteration_s_broadcast() -> None:
    metrics = Metrics("j", "ns")

    async def go() -> None:
        rt = Runtime(metrics, item_timeout=60.0, obs_dim=0)
        await _prove(rt, ["a", "b"])  # iteration 0: both served
        rt.start_iteration(1, 1, _items(4), b"params")  # observes iteration 0's broadcast
        for w in ("a", "b"):
            _answer(rt, await rt.pull(2, 0, w), w)
        rt.start_iteration(2, 2, _items(4), b"params")  # and iteration 1's

    asyncio.run(go())
    text = metrics.render().decode()
    count = [line for line in text.splitlines() if line.startswith("esenas_iteration_broadcast_seconds_count{")]
    assert count and float(count[0].rsplit(" ", 1)[1]) == 2.0


def test_a_worker_that_died_holding_a_lease_at_the_start_does_not_block_the_others() -> None:
    # Before any worker is proven, every lease is on probation: the first worker's lease, left
    # open by a crash, counted against the cap until the iteration ended, and nobody got its items.
    async def go() -> tuple[int, int]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=0.05, obs_dim=0, max_lease_items=16)
        rt.start_iteration(0, 0, _items(16), b"params")
        first = await rt.pull(16, 0, "dies")  # and never answers
        await asyncio.sleep(0.1)  # past the item timeout
        second = await rt.pull(16, 0, "lives")
        return len(first.items) // wire.WORK_DTYPE.itemsize, len(second.items) // wire.WORK_DTYPE.itemsize

    first, second = asyncio.run(go())
    assert first == 16 and second >= 1  # the timed-out items are re-issued to the next worker (0 before)


def test_concurrent_pulls_under_one_id_hold_one_lease() -> None:
    """A worker holds one lease at a time; pulling again abandons the previous one. Pulls that wait
    concurrently under one id each got a lease when items came (16 streams under one proven id held
    16 leases); now the newest lease hands the older ones' items back at once."""
    async def go() -> tuple[list[int], bool]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0, max_lease_items=4)
        await _prove(rt, ["a", "greedy"])
        waiting = [asyncio.ensure_future(rt.pull(4, 5000, "greedy")) for _ in range(3)]
        await asyncio.sleep(0.01)  # all three wait for the next iteration
        rt.start_iteration(1, 1, _items(12), b"params")
        leases = await asyncio.gather(*waiting)
        got = [len(lease.items) // wire.WORK_DTYPE.itemsize for lease in leases]
        open_ids = [lease.lease_id for lease in leases if rt.leases.state(lease.lease_id, "greedy").name == "OPEN"]
        honest = await rt.pull(4, 0, "a")  # the abandoned items are free for others
        return got, len(open_ids) == 1 and len(honest.items) > 0

    got, one_open = asyncio.run(go())
    assert sum(got) >= 8 and one_open


def test_a_proven_worker_with_nothing_else_backs_up_what_made_up_ids_hold_at_once() -> None:
    """Made-up ids may hold half an iteration and answer nothing. Before, the proven workers
    waited for the abandon rule (4 x the typical item time) to copy those items; disabled here,
    the iteration never completed. Now a proven worker that would idle gets a copy at once."""
    async def go() -> tuple[int, bool, float]:
        metrics = Metrics("j", "ns")
        rt = Runtime(metrics, item_timeout=60.0, obs_dim=0, max_lease_items=4)
        await _prove(rt, ["a"])
        rt.queue.abandon_factor = rt.queue.straggler_factor = math.inf  # no other backup copies
        rt.start_iteration(1, 1, _items(8), b"params")
        hoarded = 0
        for i in range(4):
            hoarded += len((await rt.pull(4, 0, f"sybil-{i}")).items) // wire.WORK_DTYPE.itemsize
        for _ in range(12):
            lease = await rt.pull(4, 0, "a")
            if lease.items:
                _answer(rt, lease, "a")
        copies = metrics.registry.get_sample_value("esenas_items_speculative_total", {"esenas_job": "j", "esenas_namespace": "ns"})
        return hoarded, rt.queue.complete, copies or 0.0

    hoarded, complete, copies = asyncio.run(go())
    assert hoarded == 4 and complete and copies == 4
