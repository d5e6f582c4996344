"""The aggregator's work queue for one iteration: leases, deadlines, vectorised result intake.

Pure numpy, no gRPC: whichever worker asks gets a batch; an item whose lease deadline
passed is re-issued; results are checked as whole arrays (one ``frombuffer`` per batch)
and every bad record is counted by reason and never stored. Backup copies of the
iteration's stragglers come from :class:`~esenas_aggregator.tail.TailPolicy`; closing an
iteration without its slowest pairs from :class:`~esenas_aggregator.straggler.ClosePolicy`.
"""

from __future__ import annotations

import math
import time

import numpy as np
import numpy.typing as npt
from esenas.results import ITEM_DTYPE, KIND_EXACT, Results

from esenas_aggregator.outcome import REJECT_REASONS, IngestOutcome
from esenas_aggregator.straggler import GRACE_FACTOR, ClosePolicy
from esenas_aggregator.tail import (
    ABANDON_FACTOR,
    MAX_COPIES,
    STRAGGLER_FACTOR,
    TAIL_FRACTION,
    TailPolicy,
)

__all__ = ["REJECT_REASONS", "IngestOutcome", "WorkQueue"]


class WorkQueue(TailPolicy, ClosePolicy):
    """Items of the current iteration, their leases and their results."""

    def __init__(
        self,
        item_timeout: float,
        obs_dim: int,
        max_copies: int = MAX_COPIES,
        straggler_factor: float = STRAGGLER_FACTOR,
        tail_fraction: float = TAIL_FRACTION,
        abandon_factor: float = ABANDON_FACTOR,
        min_pairs_fraction: float = 1.0,
        grace_factor: float = GRACE_FACTOR,
    ) -> None:
        self.item_timeout = item_timeout
        self.obs_dim = obs_dim
        self.max_copies = max_copies
        self.straggler_factor = straggler_factor
        self.tail_fraction = tail_fraction
        self.abandon_factor = abandon_factor
        self.min_pairs_fraction = min_pairs_fraction
        self.grace_factor = grace_factor
        self.iteration = -1
        self.reissued = 0
        self.speculative = 0
        self._now = 0.0
        self._items = np.empty(0, dtype=ITEM_DTYPE)
        self._start(np.empty(0, dtype=ITEM_DTYPE))

    def _start(self, items: npt.NDArray[np.void]) -> None:
        n = len(items)
        self._items = items
        self._done = np.zeros(n, dtype=bool)
        self._deadline = np.full(n, -math.inf)
        self._leased_once = np.zeros(n, dtype=bool)
        self._copies = np.zeros(n, dtype=np.uint8)  # leases handed out for each item
        self._leased_at = np.full(n, math.inf)  # time of each item's first lease
        self._last_leased_at = np.full(n, math.inf)  # time of each item's latest copy
        self._age_done = np.full(n, np.nan)  # lease-to-result time of completed items
        self._typical_age: tuple[int, float, float] = (0, math.inf, math.inf)  # (items done, median, long age)
        self._deadline_lb: float | None = None  # a lower bound of the earliest pending deadline
        self._outstanding = np.zeros(0, np.int64)  # unfinished items, refreshed every 1% done
        self._outstanding_at: int | None = None
        # first leases go out in this order: exact evals first, since the straggler policy's close
        # waits for every one of them (leased last, they were the iteration's tail)
        self._order = np.argsort(items["kind"] != KIND_EXACT, kind="stable").astype(np.int64)
        self._fresh = 0  # items _order[:_fresh] have been leased at least once
        self._oldest = 0  # no position of _order below this holds an item outstanding with a single copy (see _oldest_lone)
        self._n_done = 0
        self._reward_pos = np.zeros(n)
        self._reward_neg = np.zeros(n)
        self._steps = np.zeros(n, dtype=np.uint32)
        self._obs_count = 0.0
        self._obs_sum = np.zeros(self.obs_dim)
        self._obs_sumsq = np.zeros(self.obs_dim)
        self._start_close()

    def start(self, iteration: int, items: npt.NDArray[np.void]) -> None:
        """Begin an iteration with the plan's items (``index`` must be 0..n-1 in order)."""
        packed = np.empty(len(items), dtype=ITEM_DTYPE)
        for name in ITEM_DTYPE.names or ():
            packed[name] = items[name]
        if not np.array_equal(packed["index"], np.arange(len(items))):
            raise ValueError("plan.items.index must be 0..n-1 in order")
        self.iteration = iteration
        self._start(packed)

    @property
    def size(self) -> int:
        return len(self._items)

    @property
    def complete(self) -> bool:
        return self.size > 0 and self._n_done == self.size

    @property
    def fresh_remaining(self) -> int:
        """Items never leased yet in this iteration."""
        return self.size - self._fresh

    def kinds(self, index: npt.NDArray[np.integer]) -> npt.NDArray[np.uint8]:
        """The kind (pair or exact) of each item in ``index`` (which must be in range)."""
        return np.asarray(self._items["kind"][index], np.uint8)

    def unfinished(self, index: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """Those of ``index`` (items of this iteration) still without a result."""
        idx = np.asarray(index, np.int64)
        idx = idx[(idx >= 0) & (idx < self.size)]
        return idx[~self._done[idx]]

    def next_deadline(self, now: float = math.inf) -> float | None:
        """Earliest lease deadline among unfinished items (None when none is leased), or a lower
        bound of it while that bound is still ahead of ``now``: 10,000 workers polling an
        iteration of 80,000 items must not each cost a scan of all of them."""
        if self._deadline_lb is not None and self._deadline_lb > now:
            return self._deadline_lb
        leased = self._order[: self._fresh]
        pending = leased[~self._done[leased]]
        if not pending.size:
            self._deadline_lb = None
            return None
        self._deadline_lb = float(self._deadline[pending].min())
        return self._deadline_lb

    def lease(
        self, max_items: int, now: float, avoid: npt.NDArray[np.int64] | None = None, hoarded: npt.NDArray[np.int64] | None = None,
    ) -> npt.NDArray[np.void]:
        """Lease up to ``max_items`` items: never-issued ones first (exact evals before pairs), then expired leases, then
        one speculative backup copy of an outstanding item (see :meth:`_speculate`), else of one
        of ``hoarded`` (held by unproven ids only: :meth:`_backup_hoarded`); none of ``avoid``
        (items that went wrong for this worker, bounds.ItemWatch.avoid)."""
        if max_items <= 0 or self.complete or self.closed:
            return self._items[:0]
        take = self._order[self._fresh : min(self.size, self._fresh + max_items)]
        self._fresh += len(take)
        self._leased_at[take] = now
        self._drained(now)
        if len(take) < max_items and self._fresh == self.size:
            nd = self.next_deadline(now)
            if nd is None or nd > now:  # no lease has expired: no scan
                expired = np.zeros(0, np.int64)
            else:
                expired = np.flatnonzero(~self._done & (self._deadline <= now) & self._leased_once)
                if avoid is not None:
                    expired = expired[~np.isin(expired, avoid)]
                expired = expired[: max_items - len(take)]
            self.reissued += len(expired)
            take = np.concatenate([take, expired])
            if len(take) == 0:
                take = self._speculate(now)
                if len(take) == 0 and hoarded is not None and len(hoarded):
                    take = self._backup_hoarded(hoarded)
                if avoid is not None and len(take):
                    take = take[~np.isin(take, avoid)]
        self._leased_once[take] = True
        self._copies[take] = np.minimum(self._copies[take].astype(np.int64) + 1, 255)
        self._last_leased_at[take] = now
        self._deadline[take] = now + self.item_timeout
        if len(take) and self._deadline_lb is not None:  # None: unknown, rescanned when asked
            self._deadline_lb = min(self._deadline_lb, now + self.item_timeout)
        return self._items[take]

    def release(self, index: npt.NDArray[np.integer], iteration: int, now: float) -> None:
        """Leases that never reached their worker (its call was cancelled meanwhile) expire now,
        so the next request re-issues them instead of the item timeout's wait."""
        if iteration != self.iteration or not len(index):
            return
        idx = np.asarray(index, np.int64)
        idx = idx[(idx < self.size) & ~self._done[np.minimum(idx, max(self.size - 1, 0))]]
        self._deadline[idx] = now
        self._copies[idx] = np.maximum(self._copies[idx].astype(np.int64) - 1, 0)
        if self._deadline_lb is not None:
            self._deadline_lb = min(self._deadline_lb, now)

    def ingest(
        self,
        iteration: int,
        records: npt.NDArray[np.void],
        obs: tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]] | None,
        now: float | None = None,
        late: bool = False,
    ) -> IngestOutcome:
        """Check and store one batch of results, vectorised; bad records are only counted.
        ``now`` (default: the monotonic clock) times the items' leases, for straggler copies.
        ``late``: into a closed iteration, for the pairs it carries (:mod:`carry`)."""
        self._now = time.monotonic() if now is None else now
        out = IngestOutcome()
        n = len(records)
        if n == 0:
            return out
        if iteration < self.iteration or (iteration == self.iteration and self.closed and not late):
            out.stale = n  # a past iteration, or one the straggler policy closed: too late
            return out
        if iteration != self.iteration or self.size == 0:
            out.reject("unknown_iteration", n)
            return out
        if self._ingest_clean(records, obs, out):
            return out
        return self._ingest_checked(records, obs, out)

    def _ingest_clean(
        self,
        records: npt.NDArray[np.void],
        obs: tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]] | None,
        out: IngestOutcome,
    ) -> bool:
        """Store a batch with no bad record in a few whole-array operations (the common case);
        returns False, storing nothing, when any record needs the per-reason checks."""
        idx = records["index"]
        if int(idx.max()) >= len(self._items):
            return False
        items = self._items[idx]
        exact = items["kind"] == KIND_EXACT
        reward_neg = records["reward_neg"]
        any_exact = bool(exact.any())
        neg_ok = np.isfinite(reward_neg) | exact if any_exact else np.isfinite(reward_neg)
        if not (
            (records["topology"] == items["topology"]).all()
            and np.isfinite(records["reward_pos"]).all()
            and neg_ok.all()
        ):
            return False
        # Indices strictly increasing (as leased) means no repeat inside the batch.
        if (len(idx) > 1 and not (idx[1:] > idx[:-1]).all()) or self._done[idx].any():
            return False
        n = len(idx)
        self._done[idx] = True
        self._age_done[idx] = self._now - self._leased_at[idx]
        self._n_done += n
        self._reward_pos[idx] = records["reward_pos"]
        self._reward_neg[idx] = np.where(exact, np.nan, reward_neg) if any_exact else reward_neg
        steps = records["steps"]
        self._steps[idx] = steps
        out.accepted = n
        out.steps = int(steps.sum(dtype=np.int64))
        n_exact = int(exact.sum()) if any_exact else 0
        out.rollouts = 2 * n - n_exact
        self._count_done(n - n_exact, n_exact)
        if obs is not None:
            self._merge_obs(obs)
        return True

    def _merge_obs(self, obs: tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]) -> None:
        self._obs_count += obs[0]
        self._obs_sum += obs[1]
        self._obs_sumsq += obs[2]

    def _ingest_checked(
        self,
        records: npt.NDArray[np.void],
        obs: tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]] | None,
        out: IngestOutcome,
    ) -> IngestOutcome:
        """Check every record by reason, store the good ones, count the others."""
        n = len(records)
        idx = records["index"].astype(np.int64)
        in_range = idx < self.size
        safe = np.where(in_range, idx, 0)
        items = self._items[safe]
        ok = in_range & (records["topology"] == items["topology"])
        out.reject("malformed", int(n - ok.sum()))
        exact = items["kind"] == KIND_EXACT
        finite = (
            np.isfinite(records["reward_pos"])
            & (np.isfinite(records["reward_neg"]) | exact)
        )
        bad = ok & ~finite
        out.reject("nonfinite", int(bad.sum()))
        ok &= finite
        # Duplicates: already done, or repeated inside this batch (first copy wins).
        first = np.zeros(n, dtype=bool)
        _, first_pos = np.unique(np.where(ok, idx, -1 - np.arange(n)), return_index=True)
        first[first_pos] = True
        dup = ok & (self._done[safe] | ~first)
        # A late copy of an item this queue itself handed out more than once is expected, not bad.
        late = dup & self._done[safe] & (self._copies[safe] > 1)
        out.redundant = int(late.sum())
        out.reject("duplicate", int(dup.sum()) - out.redundant)
        ok &= ~dup
        good = idx[ok]
        if len(good) == 0:
            return out
        self._done[good] = True
        self._age_done[good] = self._now - self._leased_at[good]
        self._n_done += len(good)
        self._reward_pos[good] = records["reward_pos"][ok]
        self._reward_neg[good] = np.where(exact[ok], np.nan, records["reward_neg"][ok])
        self._steps[good] = records["steps"][ok]
        out.accepted = len(good)
        out.steps = int(records["steps"][ok].sum(dtype=np.int64))
        n_exact = int(exact[ok].sum())
        out.rollouts = 2 * len(good) - n_exact
        self._count_done(len(good) - n_exact, n_exact)
        # Observation stats are per batch; merge them only from a batch with no bad records.
        if obs is not None and out.rejected_total == 0:
            self._merge_obs(obs)
        return out

    def seeds(self, mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint64]:
        """The eps seeds of the items ``mask`` selects."""
        return np.asarray(self._items["seed"][mask], np.uint64)

    def obs_sums(self) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The observation statistics merged so far (copies): count, sum, sum of squares."""
        return self._obs_count, self._obs_sum.copy(), self._obs_sumsq.copy()

    def successor(self) -> WorkQueue:
        """An empty queue with this one's settings and typical item time, for the next iteration
        while this closed one takes its late pairs (:mod:`carry`)."""
        q = WorkQueue(self.item_timeout, self.obs_dim, self.max_copies, self.straggler_factor, self.tail_fraction,
                      self.abandon_factor, self.min_pairs_fraction, self.grace_factor)
        self.carry_typical()
        q._prior_typical, q.iteration = self._prior_typical, self.iteration
        return q

    def progress(self) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.uint32]]:
        """Per item of the iteration: done, and its rewards and steps where done (live, not copies)."""
        return self._done, self._reward_pos, self._reward_neg, self._steps

    def results(self) -> Results:
        """Results of the completed iteration in item order; of a closed one, only the items in.
        The library's own record: ``ESENAS.tell`` takes it as is."""
        if not (self.complete or self.closed):
            raise RuntimeError(f"iteration {self.iteration}: {self.outstanding} items outstanding")
        done = self._done
        return Results(
            index=self._items["index"][done],
            reward_pos=self._reward_pos[done],
            reward_neg=self._reward_neg[done],
            steps=self._steps[done],
            obs_count=self._obs_count,
            obs_sum=self._obs_sum.copy(),
            obs_sumsq=self._obs_sumsq.copy(),
        )
