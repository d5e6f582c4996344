"""Items that go wrong (a return out of bounds, a rollout the environment failed): one caller's are
re-issued; the same item going wrong for two workers (or twice for the only one) is the task, and the
job fails with a clear reason."""

from __future__ import annotations

import asyncio

import numpy as np
from esenas_aggregator.bounds import ItemWatch, ResultBounds
from esenas_aggregator.leases import Lease
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.runtime import Runtime
from esenas_api import wire

BOUNDS = ResultBounds(max_abs_reward=100.0, max_episode_steps=1000)


def _records(index: list[int], reward: float) -> np.ndarray:
    n = len(index)
    return wire.decode_results(wire.encode_results(np.array(index), np.full(n, reward), np.zeros(n), np.full(n, 20), np.zeros(n)))


def test_one_caller_among_others_never_confirms_two_callers_do() -> None:
    w = ItemWatch(BOUNDS)
    for _ in range(5):  # a client with the token repeating itself: refused, re-issued, never a verdict
        assert not w.out_of_bounds(3, np.array([7]), _records([7], 1e308), "rogue", sole=False).any()
    assert w.confirmed is None
    assert w.out_of_bounds(3, np.array([7, 8]), _records([7, 8], -2e5), "honest", sole=False).tolist() == [True, False]
    assert w.confirmed is not None
    assert w.confirmed.startswith("RewardOutOfBounds: spec.environment.maxAbsReward: item 7 of iteration 3")
    assert "-2e+05" in w.confirmed and "beyond 100" in w.confirmed and "6 times" in w.confirmed


def test_the_only_caller_confirms_on_its_second_refusal_of_an_item() -> None:
    w = ItemWatch(BOUNDS)
    assert not w.out_of_bounds(0, np.array([1]), _records([1], 500.0), "w", sole=True).any()
    assert not w.out_of_bounds(0, np.array([2]), _records([2], 500.0), "w", sole=True).any()  # another item: once each
    assert w.out_of_bounds(0, np.array([1]), _records([1], 500.0), "w", sole=True).all()


def test_a_new_iteration_starts_the_count_afresh() -> None:
    w = ItemWatch(BOUNDS)
    w.out_of_bounds(0, np.array([1]), _records([1], 500.0), "a", sole=False)
    assert not w.out_of_bounds(1, np.array([1]), _records([1], 500.0), "b", sole=False).any()  # item 1 of iteration 1 is another item
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
    assert rt.job_failure is not None and "spec.environment.maxAbsReward" in rt.job_failure
    asyncio.run(asyncio.wait_for(rt.wait_closable(), 1.0))  # the training loop wakes to fail the job


def test_a_relay_hands_the_confirmed_result_on_for_the_aggregator_to_judge() -> None:
    rt, got = _two_workers_return_the_same_out_of_bounds_item(relay=True)
    assert got == [(0, 1), (1, 0)]  # the second copy is accepted locally and goes upstream with its round
    assert rt.queue.results().reward_pos.tolist() == [5e3]
    assert rt.job_failure is None  # the relay's next rounds still wait for their items


def test_a_rogue_among_honest_workers_cannot_fail_the_job() -> None:
    async def go() -> tuple[str | None, bool]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0, bounds=BOUNDS, max_lease_items=1)
        rt.start_iteration(0, 0, _items(3), b"params")
        rt.seen("honest")
        for _ in range(4):  # the rogue keeps taking whatever is free and poisoning it
            _push(rt, await rt.pull(1, 0, "rogue"), "rogue", 1e308)
        for _ in range(3):
            _push(rt, await rt.pull(1, 0, "honest"), "honest", 50.0)
        return rt.job_failure, rt.queue.complete

    why, complete = asyncio.run(go())
    assert why is None and complete


def test_a_failure_two_workers_report_fails_the_job_with_their_line() -> None:
    w = ItemWatch()
    assert not w.failed(2, np.array([4]), "environment 'm:E': RuntimeError: boom (m.py:9 in step)", "a", sole=False).any()
    assert w.confirmed is None
    assert w.failed(2, np.array([4]), "environment 'm:E': RuntimeError: boom (m.py:9 in step)", "b", sole=False).all()
    assert w.confirmed == ("EnvironmentFailed: spec.environment.id: the rollout of item 4 of iteration 2 failed each of the "
                           "2 times it ran, last: environment 'm:E': RuntimeError: boom (m.py:9 in step)")


def test_a_failure_and_an_out_of_bounds_return_are_counted_apart() -> None:
    w = ItemWatch(BOUNDS)
    w.out_of_bounds(0, np.array([1]), _records([1], 500.0), "a", sole=False)
    assert not w.failed(0, np.array([1]), "why", "b", sole=False).any()  # b's failure is its first of that kind


def _report_failed(rt: Runtime, lease: Lease, worker: str) -> None:
    items = wire.decode_items(lease.items)
    rt.push(rt.session, lease.iteration, b"", b"", lease.lease_id, worker, items["index"].astype("<u4").tobytes(), "boom")


def test_failed_items_are_re_issued_then_fail_the_job_or_go_up_from_a_relay() -> None:
    async def go(relay: bool) -> tuple[Runtime, int]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0, bounds=BOUNDS, max_lease_items=1)
        rt.forward_confirmed = relay
        rt.start_iteration(0, 0, _items(1), b"params")
        _report_failed(rt, await rt.pull(1, 0, "a"), "a")
        again = await rt.pull(1, 0, "b")  # re-issued at once
        _report_failed(rt, again, "b")
        return rt, len(again.items) // wire.WORK_DTYPE.itemsize

    rt, reissued = asyncio.run(go(relay=False))
    assert reissued == 1
    assert rt.job_failure is not None and rt.job_failure.startswith("EnvironmentFailed: ") and rt.job_failure.endswith("last: boom")
    assert rt.metrics.registry.get_sample_value("esenas_rollouts_failed_total", {"esenas_job": "j", "esenas_namespace": "ns"}) == 2
    rt, _ = asyncio.run(go(relay=True))
    assert rt.job_failure is None and rt.forward_failures == {0: "boom"}  # the relay's round hands item 0 on
    asyncio.run(asyncio.wait_for(rt.wait_closable(), 1.0))  # and stops waiting for it


def test_a_failure_for_an_item_the_caller_does_not_hold_is_not_counted() -> None:
    async def go() -> str | None:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0, bounds=BOUNDS, max_lease_items=1)
        rt.start_iteration(0, 0, _items(3), b"params")
        rt.seen("b")
        for w in ("a", "b"):  # each holds its own item and blames item 2, which neither holds
            lease = await rt.pull(1, 0, w)
            rt.push(rt.session, lease.iteration, b"", b"", lease.lease_id, w, np.array([2], "<u4").tobytes(), "lie")
        return rt.job_failure

    assert asyncio.run(go()) is None


def test_a_reported_failure_reaches_the_status_on_one_line_and_cut() -> None:
    w = ItemWatch()
    for caller in ("a", "b"):
        w.failed(0, np.array([0]), "line one\nline two\t" + "x" * 1000, caller, sole=False)
    assert w.confirmed is not None and "\n" not in w.confirmed and "line one line two x" in w.confirmed
    assert len(w.confirmed) < 600


def test_an_item_that_failed_for_a_worker_goes_to_another_first() -> None:
    """Before, each worker asking again got back the item it had just reported (the lowest expired
    one), so with two workers whose environment hangs no item ever failed for both: a silent stall."""
    async def go() -> tuple[list[int], list[int], str | None, list[int]]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0, bounds=BOUNDS, max_lease_items=1)
        rt.start_iteration(0, 0, _items(3), b"params")
        _push(rt, await rt.pull(1, 0, "b"), "b", 50.0)  # item 0: "b" is a proven worker
        first = await rt.pull(1, 0, "a")
        _report_failed(rt, first, "a")
        busy = await rt.pull(1, 0, "b")  # item 2, still rolling out
        again = await rt.pull(1, 0, "a")  # the only free item is the one "a" just reported: not for "a"
        _push(rt, busy, "b", 50.0)
        other = await rt.pull(1, 0, "b")
        _report_failed(rt, other, "b")
        return ([int(i) for i in wire.decode_items(first.items)["index"]], [int(i) for i in wire.decode_items(again.items)["index"]],
                rt.job_failure, [int(i) for i in wire.decode_items(other.items)["index"]])

    first, again, why, other = asyncio.run(go())
    assert first == [1] and again == [] and other == [1]
    assert why is not None and why.startswith("EnvironmentFailed: spec.environment.id: the rollout of item 1 of iteration 0 failed each of the 2 times")


def test_the_only_worker_gets_its_failed_item_back_and_confirms_it_alone() -> None:
    async def go() -> tuple[list[int], str | None]:
        rt = Runtime(Metrics("j", "ns"), item_timeout=60.0, obs_dim=0, bounds=BOUNDS, max_lease_items=1)
        rt.start_iteration(0, 0, _items(1), b"params")
        _report_failed(rt, await rt.pull(1, 0, "a"), "a")
        again = await rt.pull(1, 0, "a")
        _report_failed(rt, again, "a")
        return [int(i) for i in wire.decode_items(again.items)["index"]], rt.job_failure

    again, why = asyncio.run(go())
    assert again == [0] and why is not None and "failed each of the 2 times" in why


def test_a_dismissed_item_is_never_confirmed_again_that_iteration_and_lines_stay_printable() -> None:
    """What the aggregator's replay ran fine (esenas_aggregator.verify) was a lie: further reports of
    that item are counted as lies, not believed; the next iteration starts afresh."""
    w = ItemWatch(BOUNDS)
    w.failed(4, np.array([9]), "boom", "a", sole=False)
    assert w.failed(4, np.array([9]), "boom\n\x1b[31mFORGED", "b", sole=False).all()
    assert w.suspect == (4, 9) and w.confirmed is not None
    assert w.confirmed.endswith("last: boom [31mFORGED")  # one line, no escape character
    w.dismiss()
    assert w.confirmed is None and w.suspect is None
    assert not w.failed(4, np.array([9]), "boom", "c", sole=False).any()
    assert w.lies == 1 and w.confirmed is None
    w.failed(5, np.array([9]), "boom", "a", sole=False)
    assert w.failed(5, np.array([9]), "boom", "b", sole=False).all()  # a new iteration: judged again
