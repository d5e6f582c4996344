"""Out-of-bounds returns: one caller's are refused and re-issued; the same item out of bounds for two
workers (or twice for the only one) is the task's own return, which fails the job with a clear reason."""

from __future__ import annotations

import asyncio

import numpy as np
from esenas_aggregator.bounds import BoundWatch, ResultBounds
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.runtime import Lease, Runtime
from esenas_api import wire

BOUNDS = ResultBounds(max_abs_reward=100.0, max_episode_steps=1000)


def _records(index: list[int], reward: float) -> np.ndarray:
    n = len(index)
    return wire.decode_results(wire.encode_results(np.array(index), np.full(n, reward), np.zeros(n), np.full(n, 20), np.zeros(n)))


def test_one_caller_among_others_never_confirms_two_callers_do() -> None:
    w = BoundWatch(BOUNDS)
    for _ in range(5):  # a client with the token repeating itself: refused, re-issued, never a verdict
        assert not w.refused(3, np.array([7]), _records([7], 1e308), "rogue", sole=False).any()
    assert w.confirmed is None
    assert w.refused(3, np.array([7, 8]), _records([7, 8], -2e5), "honest", sole=False).tolist() == [True, False]
    assert w.confirmed is not None
    assert "spec.environment.maxAbsReward" in w.confirmed and "item 7 of iteration 3" in w.confirmed
    assert "-2e+05" in w.confirmed and "beyond 100" in w.confirmed and "6 times" in w.confirmed


def test_the_only_caller_confirms_on_its_second_refusal_of_an_item() -> None:
    w = BoundWatch(BOUNDS)
    assert not w.refused(0, np.array([1]), _records([1], 500.0), "w", sole=True).any()
    assert not w.refused(0, np.array([2]), _records([2], 500.0), "w", sole=True).any()  # another item: once each
    assert w.refused(0, np.array([1]), _records([1], 500.0), "w", sole=True).all()


def test_a_new_iteration_starts_the_count_afresh() -> None:
    w = BoundWatch(BOUNDS)
    w.refused(0, np.array([1]), _records([1], 500.0), "a", sole=False)
    assert not w.refused(1, np.array([1]), _records([1], 500.0), "b", sole=False).any()  # item 1 of iteration 1 is another item
    assert w.confirmed is None


def _items(n: int) -> np.ndarray:
    it = np.zeros(n, dtype=wire.WORK_DTYPE)
    it["index"] = np.arange(n)
    it["seed"] = np.arange(1, n + 1)
    return it


def _push(rt: Runtime, lease: Lease, worker: str, reward: float) -> tuple[int, int]:
    items = wire.decode_items(lease.items)
    n = len(items)
    out = rt.push(rt.session, lease.iteration, wire.encode_results(items["index"], np.full(n, reward), np.zeros(n), np.full(n, 20), items["topology"]),
                  b"", lease.lease_id, worker)
    return out.accepted, out.rejected.get("reward_bound", 0)


def _two_workers_return_the_same_out_of_bounds_item(relay: bool) -> tuple[Runtime, list[tuple[int, int]]]:
    async def go() -> tuple[Runtime, list[tuple[int, int]]]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0, bounds=BOUNDS, max_lease_items=1)
        rt.forward_confirmed = relay
        rt.start_iteration(0, 0, _items(1), b"params")
        got = [_push(rt, await rt.pull(1, 0, "a"), "a", 5e3)]  # item 0, refused; released
        got.append(_push(rt, await rt.pull(1, 0, "b"), "b", 5e3))  # item 0 again, from another worker
        return rt, got

    return asyncio.run(go())


def test_the_aggregator_reports_the_task_s_returns_beyond_the_bound() -> None:
    rt, got = _two_workers_return_the_same_out_of_bounds_item(relay=False)
    assert got == [(0, 1), (0, 1)]  # both refused
    assert rt.out_of_bounds is not None and "spec.environment.maxAbsReward" in rt.out_of_bounds
    asyncio.run(asyncio.wait_for(rt.wait_closable(), 1.0))  # the training loop wakes to fail the job


def test_a_relay_hands_the_confirmed_result_on_for_the_aggregator_to_judge() -> None:
    rt, got = _two_workers_return_the_same_out_of_bounds_item(relay=True)
    assert got == [(0, 1), (1, 0)]  # the second copy is accepted locally and goes upstream with its round
    assert rt.queue.results().reward_pos.tolist() == [5e3]
    assert rt.out_of_bounds is None  # the relay's next rounds still wait for their items


def test_a_rogue_among_honest_workers_cannot_fail_the_job() -> None:
    async def go() -> tuple[str | None, bool]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0, bounds=BOUNDS, max_lease_items=1)
        rt.start_iteration(0, 0, _items(3), b"params")
        rt.seen("honest")
        for _ in range(4):  # the rogue keeps taking whatever is free and poisoning it
            _push(rt, await rt.pull(1, 0, "rogue"), "rogue", 1e308)
        for _ in range(3):
            _push(rt, await rt.pull(1, 0, "honest"), "honest", 50.0)
        return rt.out_of_bounds, rt.queue.complete

    why, complete = asyncio.run(go())
    assert why is None and complete
