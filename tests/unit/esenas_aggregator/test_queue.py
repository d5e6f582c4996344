"""WorkQueue: leases, deadlines and re-issue, and vectorised rejection of bad records."""

from __future__ import annotations

import numpy as np
from esenas.results import Results
from esenas_aggregator.queue import WorkQueue
from esenas_api import wire

from tests.unit.esenas_aggregator.workitems import work_items

_items = work_items


def _records(items: np.ndarray, rp: float = 1.0, rn: float = 2.0) -> np.ndarray:
    buf = wire.encode_results(items["index"], np.full(len(items), rp), np.full(len(items), rn), np.full(len(items), 7), items["topology"])
    return wire.decode_results(buf)


def test_leases_fresh_items_then_reissues_only_expired_ones() -> None:
    q = WorkQueue(item_timeout=10.0, obs_dim=0, max_copies=1)  # no speculation
    q.start(3, _items(5))
    a = q.lease(3, now=0.0)
    b = q.lease(3, now=1.0)
    assert list(a["index"]) == [0, 1, 2] and list(b["index"]) == [3, 4]
    assert len(q.lease(3, now=5.0)) == 0  # all leased, none expired
    q.ingest(3, _records(a), None)
    again = q.lease(5, now=10.5)  # b's lease (deadline 11.0) still runs; nothing for a
    assert len(again) == 0
    again = q.lease(5, now=11.0)
    assert list(again["index"]) == [3, 4] and q.reissued == 2
    assert q.next_deadline() == 21.0


def test_iteration_completes_with_all_items_in_any_order() -> None:
    q = WorkQueue(item_timeout=1.0, obs_dim=2)
    items = _items(4, exact=1)
    q.start(0, items)
    q.lease(10, 0.0)
    obs = (3.0, np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    out = q.ingest(0, _records(items[[4, 2]], rn=np.nan), obs)
    assert out.accepted == 1 and out.rejected == {"nonfinite": 1}  # NaN r- only allowed for exact evals
    assert not q.complete
    q.ingest(0, _records(items[[0, 1, 2, 3]]), obs)
    assert q.complete
    r = q.results()
    assert isinstance(r, Results)  # the library's own record: ESENAS.tell takes it as is
    assert list(r.index) == [0, 1, 2, 3, 4]
    assert np.isnan(r.reward_neg[4]) and r.reward_neg[0] == 2.0
    assert r.obs_count == 3.0  # the first batch had a bad record: its stats were not merged
    assert int(r.steps.sum()) == 35


def test_bad_records_are_counted_by_reason_and_never_stored() -> None:
    q = WorkQueue(item_timeout=1.0, obs_dim=0)
    items = _items(4)
    q.start(5, items)
    recs = _records(items).copy()
    recs["reward_pos"][0] = np.inf
    recs["topology"][1] = 99  # not the item's topology
    recs["index"][2] = 4000  # out of range
    out = q.ingest(5, recs, None)
    assert out.rejected == {"nonfinite": 1, "malformed": 2} and out.accepted == 1
    dup = np.concatenate([_records(items[[3]]), _records(items[[0]]), _records(items[[0]])])
    out = q.ingest(5, dup, None)
    assert out.rejected == {"duplicate": 2} and out.accepted == 1
    assert q.ingest(6, _records(items), None).rejected == {"unknown_iteration": 4}
    assert q.ingest(4, _records(items), None).stale == 4
    assert q.outstanding == 2


def test_obs_stats_merge_only_from_clean_batches() -> None:
    q = WorkQueue(item_timeout=1.0, obs_dim=1)
    items = _items(2)
    q.start(0, items)
    q.ingest(0, _records(items[[0]]), (2.0, np.array([4.0]), np.array([10.0])))
    q.ingest(0, _records(items[[1]]), (1.0, np.array([1.0]), np.array([1.0])))
    r = q.results()
    assert r.obs_count == 3.0 and r.obs_sum[0] == 5.0 and r.obs_sumsq[0] == 11.0


def test_clean_batch_fast_path_agrees_with_the_per_reason_checks() -> None:
    """Random batches, clean or spoilt in every way; the queue with its fast path for clean
    batches must end in the same state, batch by batch, as one that checks every record."""
    rng = np.random.default_rng(7)
    items = _items(300, exact=20)
    fast, checked = WorkQueue(1.0, obs_dim=1), WorkQueue(1.0, obs_dim=1)
    checked._ingest_clean = lambda *a: False  # type: ignore[method-assign]
    for q in (fast, checked):
        q.start(1, items)
    for _ in range(200):
        pick = np.sort(rng.choice(len(items), size=int(rng.integers(1, 12)), replace=False))
        recs = _records(items[pick], rp=float(rng.normal()), rn=float(rng.normal())).copy()
        spoil = rng.integers(0, 8)
        if spoil == 1:
            recs["reward_pos"][0] = np.nan
        elif spoil == 2:
            recs["topology"][-1] += 1
        elif spoil == 3:
            recs["index"][0] = 10_000
        elif spoil == 4:
            recs = np.concatenate([recs, recs[:1]])  # repeated inside the batch
        elif spoil == 5:
            recs = recs[::-1]  # clean but not in lease order
        elif spoil == 6:
            recs["reward_neg"][-1] = np.inf  # allowed only for exact evals
        obs = (1.0, np.array([2.0]), np.array([4.0]))
        a, b = fast.ingest(1, recs, obs), checked.ingest(1, recs, obs)
        assert (a.accepted, a.steps, a.rollouts, a.rejected) == (b.accepted, b.steps, b.rollouts, b.rejected)
    assert fast.outstanding == checked.outstanding < len(items)
    assert np.array_equal(fast._done, checked._done)
    assert np.array_equal(fast._reward_pos, checked._reward_pos)
    assert np.array_equal(fast._reward_neg, checked._reward_neg, equal_nan=True)
    assert fast._obs_count == checked._obs_count and np.array_equal(fast._obs_sum, checked._obs_sum)


def test_tail_gives_idle_workers_backup_copies_of_stragglers_and_the_first_result_wins() -> None:
    q = WorkQueue(item_timeout=60.0, obs_dim=0, tail_fraction=1.0)  # up to 3 copies, stragglers at 1.5x
    items = _items(8)
    q.start(0, items)
    slow = q.lease(3, now=0.0)  # a straggler holds items 0, 1, 2
    fast = q.lease(5, now=0.0)  # items 3..7 come back after 1 s
    q.ingest(0, _records(fast), None, now=1.0)
    # Half the items are in, typically after 1 s: a lease of 1.2 s is not late yet.
    assert len(q.lease(8, now=1.2)) == 0 and q.speculative == 0
    # At 1.6 s (> 1.5 x 1 s) the straggler's items get ONE backup per request, oldest first.
    assert list(q.lease(8, now=1.6)["index"]) == [0] and q.speculative == 1
    assert list(q.lease(8, now=1.6)["index"]) == [1]
    assert list(q.lease(8, now=1.6)["index"]) == [2]
    assert list(q.lease(8, now=1.6)["index"]) == [0]  # third copy, fewest copies first
    out = q.ingest(0, _records(items[[0, 1, 2]], rp=5.0), None, now=2.0)
    assert out.accepted == 3 and q.complete
    # The straggler's copies arrive late: counted as redundant, not rejected, never stored.
    late = q.ingest(0, _records(slow, rp=-9.0), None, now=5.0)
    assert late.accepted == 0 and late.redundant == 3 and late.rejected_total == 0
    assert list(q.results().reward_pos) == [5.0] * 3 + [1.0] * 5


def test_uniform_episodes_get_no_copies() -> None:
    """Fixed-length episodes: everyone finishes together, so copying the last items is waste."""
    q = WorkQueue(item_timeout=60.0, obs_dim=0)
    items = _items(10)
    q.start(0, items)
    a, b = q.lease(5, now=0.0), q.lease(5, now=0.0)
    q.ingest(0, _records(a), None, now=3.0)
    assert len(q.lease(5, now=3.1)) == 0  # b is as old as a was: not a straggler
    q.ingest(0, _records(b), None, now=3.2)
    assert q.complete and q.speculative == 0


def test_speculation_is_bounded_by_max_copies_until_the_copies_are_late_too() -> None:
    q = WorkQueue(item_timeout=60.0, obs_dim=0, max_copies=2, tail_fraction=1.0)
    items = _items(4)
    q.start(0, items)
    q.lease(2, now=0.0)
    q.ingest(0, _records(q.lease(2, now=0.0)), None, now=1.0)  # typical: 1 s, stragglers at 1.5 s
    assert sorted(int(q.lease(1, now=2.0)["index"][0]) for _ in range(2)) == [0, 1]
    assert len(q.lease(4, now=2.0)) == 0  # each item has its 2 copies: the worker waits
    assert q.speculative == 2
    assert q.next_straggler_time() == 2.0 + 1.5  # when the copies themselves are late
    # Both copies were lost with their workers: at 3.5 s each item gets one more, not at 62 s.
    assert len(q.lease(4, now=3.4)) == 0
    assert sorted(int(q.lease(1, now=3.5)["index"][0]) for _ in range(2)) == [0, 1]


def test_a_duplicate_of_an_item_leased_once_is_still_rejected() -> None:
    q = WorkQueue(item_timeout=60.0, obs_dim=0)
    items = _items(2)
    q.start(0, items)
    q.lease(2, now=0.0)
    q.ingest(0, _records(items[[0]]), None)
    out = q.ingest(0, _records(items[[0]]), None)  # no backup of item 0 was ever handed out
    assert out.redundant == 0 and out.rejected == {"duplicate": 1}


def test_waiting_workers_learn_when_the_next_straggler_can_be_backed_up() -> None:
    q = WorkQueue(item_timeout=60.0, obs_dim=0, tail_fraction=1.0)
    items = _items(4)
    q.start(0, items)
    q.lease(2, now=0.0)
    assert q.next_straggler_time() is None  # nothing done yet: the typical time is unknown
    fast = q.lease(2, now=1.0)
    q.ingest(0, _records(fast), None, now=3.0)  # typical lease-to-result time: 2 s
    assert q.next_straggler_time() == 0.0 + 1.5 * 2.0  # the oldest lease becomes a straggler at 3 s


def test_released_leases_are_reissued_at_once() -> None:
    q = WorkQueue(item_timeout=60.0, obs_dim=0, max_copies=1)
    q.start(2, _items(3))
    lost = q.lease(3, now=0.0)
    assert len(q.lease(3, now=1.0)) == 0  # leased, not expired
    q.release(lost["index"][:2], iteration=2, now=1.0)
    again = q.lease(3, now=1.0)
    assert list(again["index"]) == [0, 1] and q.reissued == 2
    q.release(lost["index"], iteration=1, now=1.0)  # another iteration's lease: ignored
    assert len(q.lease(3, now=1.5)) == 0


def test_backups_wait_for_the_tail() -> None:
    """Outside the last 10% of items a late item gets no copy: when everything is late (an
    overloaded aggregator), copying it all would feed the overload."""
    q = WorkQueue(item_timeout=60.0, obs_dim=0)
    items = _items(20)
    q.start(0, items)
    slow = q.lease(5, now=0.0)
    q.ingest(0, _records(q.lease(15, now=0.0)), None, now=1.0)  # 5 of 20 outstanding: 25%
    assert len(q.lease(1, now=3.0)) == 0  # 3x the typical 1 s: late, but not abandoned
    assert q.next_straggler_time() == 0.0 + 4.0 * 1.0  # when the oldest is presumed abandoned
    q.ingest(0, _records(slow[:3]), None, now=3.0)  # 2 of 20 outstanding: the tail
    # lease-to-result times 15 x 1 s and 3 x 3 s: their 90th percentile is 3 s, so a straggler
    # is an item leased more than 1.5 x 3 s ago
    assert len(q.lease(1, now=4.4)) == 0 and q.next_straggler_time() == 4.5
    assert list(q.lease(1, now=4.5)["index"]) == [3]


def test_a_long_honest_item_is_not_a_straggler() -> None:
    """With early termination an honest pair can be ten times the median: the tail times items
    against the 90th percentile of those done, so a copy (as long as the original) is rarer."""
    q = WorkQueue(item_timeout=60.0, obs_dim=0)
    items = _items(20)
    q.start(0, items)
    q.lease(20, now=0.0)
    for i, t in enumerate([1.0] * 15 + [8.0, 9.0, 10.0]):  # 18 of 20 in: the tail
        q.ingest(0, _records(items[i : i + 1]), None, now=t)
    assert len(q.lease(1, now=3.0)) == 0  # 3 x the median, but not the 90th percentile's 1.5 x
    assert q.next_straggler_time() == 1.5 * float(np.quantile([1.0] * 15 + [8.0, 9.0, 10.0], 0.9))


def test_abandoned_items_get_one_backup_outside_the_tail() -> None:
    """A hoarder or a hung worker holding many items cannot stall the iteration until the item
    timeout: past 4x the typical time each of its items gets one backup, never more."""
    q = WorkQueue(item_timeout=600.0, obs_dim=0)
    q.start(0, _items(20))
    hoarded = q.lease(8, now=0.0)  # 40% of the iteration: never answered
    q.ingest(0, _records(q.lease(12, now=0.0)), None, now=1.0)
    assert len(q.lease(1, now=3.9)) == 0
    copies = [int(q.lease(1, now=4.0)["index"][0]) for _ in range(8)]
    assert copies == list(hoarded["index"])  # oldest first, one each
    assert len(q.lease(1, now=10.0)) == 0 and q.speculative == 8
    q.ingest(0, _records(hoarded), None, now=5.0)
    assert q.complete
