"""The straggler policy (es.minPairsFraction): when an iteration may close without its slowest
pairs, what closing keeps, and that late results are counted as stale and never break anything."""

from __future__ import annotations

import asyncio

import numpy as np
from esenas.results import Carried
from esenas_aggregator.leases import Lease
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.queue import WorkQueue
from esenas_aggregator.runtime import Runtime
from esenas_aggregator.straggler import GRACE_FACTOR
from esenas_api import wire

from tests.unit.esenas_aggregator.workitems import work_items

_items = work_items


def _records(items: np.ndarray, rp: float = 1.0) -> np.ndarray:
    n = len(items)
    rn = np.where(items["kind"] == wire.KIND_EXACT, np.nan, 2.0)
    buf = wire.encode_results(items["index"], np.full(n, rp), rn, np.full(n, 7), items["topology"])
    return wire.decode_results(buf)


def _queue(fraction: float, pairs: int = 10, exact: int = 0) -> tuple[WorkQueue, np.ndarray]:
    q = WorkQueue(item_timeout=100.0, obs_dim=0, max_copies=1, min_pairs_fraction=fraction)
    items = _items(pairs, exact)
    q.start(0, items)
    assert len(q.lease(pairs + exact, now=0.0)) == pairs + exact
    return q, items


def test_fraction_one_waits_for_every_item() -> None:
    q, items = _queue(1.0)
    q.ingest(0, _records(items[:9]), None, now=1.0)
    assert q.close_time() is None
    assert not q.closable(1e9)
    q.ingest(0, _records(items[9:]), None, now=50.0)
    assert q.complete and q.closable(50.0)


def test_closes_after_the_fraction_plus_a_grace_of_median_item_times() -> None:
    q, items = _queue(0.8)
    q.ingest(0, _records(items[:5]), None, now=1.0)  # lease-to-result 1.0
    q.ingest(0, _records(items[5:7]), None, now=2.0)
    assert q.close_time() is None  # 7 of the 8 pairs needed
    q.ingest(0, _records(items[7:8]), None, now=2.0)  # 8 of 10: the fraction is in at t=2
    due = 2.0 + GRACE_FACTOR * 1.0  # median of (1,1,1,1,1,2,2,2) is 1
    assert q.close_time() == due and 0 < GRACE_FACTOR < 1
    assert not q.closable(2.0) and not q.closable(due - 0.01) and q.closable(due)
    out = q.ingest(0, _records(items[8:9]), None, now=due - 0.01)  # within the grace: it counts
    assert out.accepted == 1
    assert q.close() == 1  # pair 9 left out
    r = q.results()
    assert list(r.index) == list(range(9)) and list(r.reward_pos) == [1.0] * 9
    assert len(q.lease(10, now=3.0)) == 0  # a closed iteration leases nothing more


def test_late_results_of_a_closed_iteration_are_stale_not_errors() -> None:
    q, items = _queue(0.5, pairs=4)
    q.ingest(0, _records(items[:2]), None, now=1.0)
    assert q.closable(1.5)
    assert q.close() == 2
    late = q.ingest(0, _records(items[2:]), None, now=9.0)
    assert late.stale == 2 and late.accepted == 0 and late.rejected_total == 0
    bad = _records(items[2:3], rp=np.nan)  # even a bad record of a closed iteration is only stale
    assert q.ingest(0, bad, None, now=9.0).stale == 1
    assert len(q.results().index) == 2
    q.start(1, _items(4))  # the next iteration starts clean
    assert not q.closed and q.pairs_outstanding == 4


def test_every_exact_eval_must_be_in_before_closing() -> None:
    q, items = _queue(0.5, pairs=4, exact=1)
    q.ingest(0, _records(items[:4]), None, now=1.0)  # every pair, no exact eval
    assert q.close_time() is None and not q.closable(1e9)
    q.ingest(0, _records(items[4:]), None, now=2.0)
    assert q.complete


def test_fraction_counts_pairs_not_exact_evals() -> None:
    q, items = _queue(0.75, pairs=4, exact=2)
    q.ingest(0, _records(items[[0, 1, 4, 5]]), None, now=1.0)  # 2 of the 3 pairs needed + the exact evals
    assert q.close_time() is None
    q.ingest(0, _records(items[[2]]), None, now=1.0)
    assert q.close_time() == 1.0 + GRACE_FACTOR * 1.0


def test_exact_evals_are_leased_first() -> None:
    """The close waits for every exact eval: leased behind the pairs they were the iteration's tail."""
    q = WorkQueue(item_timeout=100.0, obs_dim=0, min_pairs_fraction=0.5)
    q.start(0, _items(6, exact=2))
    assert q.lease(3, now=0.0)["index"].tolist() == [6, 7, 0]
    assert q.lease(10, now=0.0)["index"].tolist() == [1, 2, 3, 4, 5]


def test_no_close_while_fresh_items_are_left() -> None:
    """While items were never handed out the fleet is not idle: the fraction alone does not close
    the iteration (that would only shrink its population); the lease of the last one does."""
    q = WorkQueue(item_timeout=100.0, obs_dim=0, max_copies=1, min_pairs_fraction=0.5)
    items = _items(8)
    q.start(0, items)
    first = q.lease(5, now=0.0)
    q.ingest(0, _records(first), None, now=1.0)  # 5 of 8 in, 4 needed
    assert q.close_time() is None and not q.closable(1e9)
    assert len(q.lease(3, now=4.0)) == 3  # the last fresh items: the close is due a grace later
    assert q.close_time() == 4.0 + GRACE_FACTOR * 1.0 and q.closable(4.0 + GRACE_FACTOR)
    assert q.close() == 3  # the three just leased are carried into the next update


def test_the_lease_of_the_last_fresh_item_wakes_the_close() -> None:
    async def go() -> bool:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0)
        rt.start_iteration(0, 0, _items(4), b"params", min_pairs_fraction=0.5)
        lease = await rt.pull(2, 0, "w0")
        assert _push(rt, lease, "w0") == (2, 0)
        assert not rt.iteration_complete.is_set()  # 2 of 4 in, but 2 never handed out
        rt.queue.grace_factor = 0.0
        await rt.pull(2, 0, "w1")
        return rt.iteration_complete.is_set()

    assert asyncio.run(go())


def _push(rt: Runtime, lease: Lease, worker: str) -> tuple[int, int]:
    items = wire.decode_items(lease.items)
    n = len(items)
    out = rt.push(
        rt.session, lease.iteration,
        wire.encode_results(items["index"], np.ones(n), np.ones(n), np.full(n, 10), items["topology"]),
        b"", lease.lease_id, worker,
    )
    return out.accepted, out.stale


def _close_without_the_slow_worker(carries: bool) -> tuple[Metrics, tuple[int, int], Carried | None]:
    """Four workers, one pair each, F = 0.75: the iteration closes without "slow", whose result
    comes in while the next iteration runs; returns what that push got and what the close after carried."""
    metrics = Metrics("j", "ns")

    async def go() -> tuple[tuple[int, int], Carried | None]:
        rt = Runtime(metrics, item_timeout=60.0, obs_dim=0)
        rt.carries = carries
        for w in ("a", "b", "c", "slow"):
            rt.seen(w)
        rt.start_iteration(0, 0, _items(4), b"params", min_pairs_fraction=0.75)
        leases = {w: await rt.pull(1, 0, w) for w in ("a", "b", "c", "slow")}
        for w in ("a", "b", "c"):
            assert _push(rt, leases[w], w) == (1, 0)
        await asyncio.wait_for(rt.wait_closable(), 60.0)  # safety net only: returns after the grace
        assert rt.close_iteration() == (1, None)
        assert len(rt.queue.results().index) == 3
        rt.start_iteration(1, 1, _items(4), b"params", min_pairs_fraction=0.75)
        late = _push(rt, leases["slow"], "slow")  # the slow worker's Exchange, which also gets new work
        nxt = await rt.pull(1, 0, "slow")
        assert nxt.iteration == 1 and len(wire.decode_items(nxt.items)) == 1
        for w in ("a", "b", "c"):
            _push(rt, await rt.pull(1, 0, w), w)
        _push(rt, nxt, "slow")
        await asyncio.wait_for(rt.wait_closable(), 60.0)
        out, carried = rt.close_iteration()
        assert out == 0
        return late, carried

    late, carried = asyncio.run(go())
    return metrics, late, carried


def test_a_push_that_keeps_its_lease_leaves_the_rest_of_it_open() -> None:
    """keep_lease: the lease takes its items' results in more than one push, and the last push
    (without it) closes the lease, so a replay is refused; nothing of it is re-issued meanwhile."""
    async def go() -> None:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0)
        rt.start_iteration(0, 0, _items(4), b"params")
        lease = await rt.pull(4, 0, "relay")
        items = wire.decode_items(lease.items)
        enc = [wire.encode_results(items["index"][s], np.ones(2), np.ones(2), np.full(2, 10), items["topology"][s])
               for s in (slice(0, 2), slice(2, 4))]
        assert rt.push(rt.session, 0, enc[0], b"", lease.lease_id, "relay", keep=True).accepted == 2
        released = rt.metrics.registry.get_sample_value("esenas_items_released_total", {"esenas_job": "j", "esenas_namespace": "ns"})
        assert released == 0  # the other two are still leased, not handed back
        assert rt.push(rt.session, 0, enc[1], b"", lease.lease_id, "relay").accepted == 2
        assert rt.queue.complete
        assert rt.push(rt.session, 0, enc[1], b"", lease.lease_id, "relay").rejected == {"replay": 2}

    asyncio.run(go())


def test_a_pair_still_out_at_the_close_joins_the_next_update() -> None:
    """es.minPairsFraction < 1 closes an iteration without its slowest pairs; the result of one,
    pushed while the next iteration runs, is accepted and handed to the next close (carry)."""
    metrics, late, carried = _close_without_the_slow_worker(carries=True)
    assert late == (1, 0)
    assert carried is not None and len(carried) == 1
    assert carried.seeds.tolist() == [4] and carried.steps.tolist() == [10]  # item 3's seed (_items: index + 1)
    labels = {"esenas_job": "j", "esenas_namespace": "ns"}
    assert metrics.registry.get_sample_value("esenas_pairs_carried_total", labels) == 1.0
    assert metrics.registry.get_sample_value("esenas_pairs_dropped_total", labels) == 0.0
    rejected = [
        s.value for m in metrics.registry.collect() if m.name == "esenas_results_rejected"
        for s in m.samples if s.name.endswith("_total")
    ]
    assert sum(rejected) == 0


def test_a_relay_drops_a_late_pair_as_stale() -> None:
    """A relay's round is handed upstream when it closes: its late results are stale there."""
    metrics, late, carried = _close_without_the_slow_worker(carries=False)
    assert late == (0, 1) and carried is None
    labels = {"esenas_job": "j", "esenas_namespace": "ns"}
    assert metrics.registry.get_sample_value("esenas_pairs_dropped_total", labels) == 1.0
    assert metrics.registry.get_sample_value("esenas_results_stale_total", labels) == 1.0


def test_runtime_with_fraction_one_never_closes_early() -> None:
    async def go() -> tuple[bool, int]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0)
        rt.start_iteration(0, 0, _items(4), b"params")
        leases = [await rt.pull(1, 0, f"w{i}") for i in range(4)]
        for i in range(3):
            _push(rt, leases[i], f"w{i}")
        early = rt.queue.closable(1e12) or rt.iteration_complete.is_set()
        _push(rt, leases[3], "w3")
        await rt.wait_closable()
        return early, rt.close_iteration()[0]

    early, dropped = asyncio.run(go())
    assert not early and dropped == 0


def test_abandon_rule_uses_the_previous_iterations_median_before_half_the_items_are_in() -> None:
    """A hoarder holding more than half an iteration (under made-up ids) is backed up after
    four previous median item times, not after the item timeout."""
    q = WorkQueue(item_timeout=100.0, obs_dim=0)
    items = _items(4)
    q.start(0, items)
    q.lease(4, now=0.0)
    q.ingest(0, _records(items), None, now=1.0)  # iteration 0: every item took 1 s
    q.carry_typical()
    q.start(1, items)
    assert len(q.lease(3, now=10.0)) == 3  # hoarded: none of them ever comes back
    assert len(q.lease(1, now=10.0)) == 1
    q.ingest(1, _records(items[3:]), None, now=11.0)  # one in of four: the median is not known
    assert len(q.lease(1, now=13.0)) == 0  # before 4 x 1 s: nothing is presumed abandoned
    assert q.next_straggler_time() == 14.0
    backup = q.lease(1, now=14.5)
    assert backup["index"].tolist() == [0] and q.speculative == 1
