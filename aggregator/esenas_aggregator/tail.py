"""The tail of an iteration: backup copies of straggling and abandoned items.

MapReduce's backup tasks (Dean & Ghemawat 2004): once an iteration's fresh items are all
leased and none has expired, an idle worker gets a copy of a straggler instead of idling at
the barrier; the first result wins. Inside the tail (the last ``tail_fraction`` of items) a
straggler is an item leased ``straggler_factor`` times longer ago than the iteration's long
lease-to-result time (its :data:`LONG_QUANTILE`); outside it only an item ``abandon_factor``
times older, and only once (a hoarding or hung worker's). Until half the items are in, the
abandon rule times items by the previous iteration's, so a hoarder holding half an iteration or more (under many
made-up worker ids) is backed up too. A mixin of :class:`~esenas_aggregator.queue.WorkQueue`, whose
arrays it reads.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

#: Most copies of an item out at once in the tail: the original, an expired-lease re-issue or
#: backups. Past it, one more only once the latest copy is itself late (it may have been lost).
MAX_COPIES: Final = 3
#: An outstanding item is a straggler once its lease is this many times older than the long
#: (:data:`LONG_QUANTILE`) lease-to-result time of the iteration's completed items.
STRAGGLER_FACTOR: Final = 1.5
#: The straggler and abandon rules time items against this quantile of the iteration's completed
#: lease-to-result times, not the median: with early termination (Hopper) an honest pair is often
#: ten times the median, and a copy of it, as long as the original, only delays its worker's next
#: iteration. With fixed-length episodes the quantile is the median within a batch's spread.
LONG_QUANTILE: Final = 0.9
#: Backups only in the tail: at most this fraction of the iteration's items still outstanding.
#: An overloaded aggregator makes every lease look late; copying them all would feed the overload
#: (10,000 simulated workers: 87,000 copies for 80,000 items before this bound).
TAIL_FRACTION: Final = 0.1
#: Outside the tail, an item whose only copy is this many times older than the long
#: lease-to-result time is presumed abandoned (a hoarding or hung worker) and gets one backup,
#: so no single worker can hold an iteration until the item timeout.
ABANDON_FACTOR: Final = 4.0


class TailPolicy:
    """Which outstanding item an idle worker should copy, and when the next one will be due."""

    max_copies: int
    straggler_factor: float
    tail_fraction: float
    abandon_factor: float
    speculative: int
    _n_done: int
    _fresh: int
    _order: npt.NDArray[np.int64]
    _oldest: int  # a position in _order
    _typical_age: tuple[int, float, float]
    _outstanding: npt.NDArray[np.int64]
    _outstanding_at: int | None
    _done: npt.NDArray[np.bool_]
    _copies: npt.NDArray[np.uint8]
    _leased_at: npt.NDArray[np.float64]
    _last_leased_at: npt.NDArray[np.float64]
    _age_done: npt.NDArray[np.float64]
    #: The last finished iteration's long lease-to-result time (inf: none yet); kept across
    #: iterations by :meth:`carry_typical`, not reset by a new iteration.
    _prior_typical: float = math.inf

    @property
    def size(self) -> int:
        raise NotImplementedError

    @property
    def outstanding(self) -> int:
        return self.size - self._n_done

    def straggler_age_cutoff(self) -> float:
        """Lease age past which an outstanding item counts as a straggler: ``straggler_factor``
        times the :data:`LONG_QUANTILE` of the lease-to-result times of the items done (recomputed
        as they grow by 10%, so the tail of a big iteration costs no O(n) work per request);
        infinite until half the items are in, so nothing is copied before the iteration's times
        are known."""
        return self.straggler_factor * self._ages()[1]

    def _typical(self) -> float:
        """Median lease-to-result time of the items done (see :meth:`_ages`)."""
        return self._ages()[0]

    def _ages(self) -> tuple[float, float]:
        """The median and the :data:`LONG_QUANTILE` of the items' lease-to-result times (infinite
        until half the items are in)."""
        done = self._typical_age[0]
        if self._n_done < max(1, self.size // 2):
            return math.inf, math.inf
        if self._n_done > done * 1.1:
            ages = self._age_done[self._done]
            ages = ages[np.isfinite(ages)]
            median, long = (float(x) for x in np.quantile(ages, (0.5, LONG_QUANTILE))) if ages.size else (math.inf, math.inf)
            self._typical_age = (self._n_done, median, long)
        return self._typical_age[1], self._typical_age[2]

    def carry_typical(self) -> None:
        """Keep the iteration ending now's :data:`LONG_QUANTILE` of lease-to-result times, the
        abandon rule's typical time in the next iteration until half its items are in (call
        before it starts)."""
        ages = self._age_done[self._done]
        ages = ages[np.isfinite(ages)]
        if ages.size:
            self._prior_typical = float(np.quantile(ages, LONG_QUANTILE))

    def _oldest_lone(self) -> int | None:
        """The outstanding item with a single copy out that was leased first. First leases go
        out in ``_order``, so it is the first such position there: a pointer that only moves
        forward finds it in amortised O(1) per request."""
        p, order = self._oldest, self._order
        while p < self._fresh and (self._done[order[p]] or self._copies[order[p]] >= 2):
            p += 1
        self._oldest = p
        return int(order[p]) if p < self._fresh else None

    def _abandoned(self, now: float) -> tuple[int | None, float | None]:
        """Outside the tail: the oldest lone item if presumed abandoned now (else None), and
        when it will be (None: not known yet). Before half the items are in, typical is the
        previous iteration's (see :meth:`carry_typical`)."""
        typical = self._ages()[1]
        if not math.isfinite(typical):
            typical = self._prior_typical
        if self.max_copies <= 1 or not math.isfinite(typical):
            return None, None
        p = self._oldest_lone()
        if p is None:
            return None, None
        when = float(self._leased_at[p]) + self.abandon_factor * typical
        return (p if when <= now else None), when

    def next_straggler_time(self) -> float | None:
        """When the oldest outstanding lease becomes a straggler that may be backed up (None:
        not yet known, or nothing to back up), so a waiting worker wakes for it."""
        if not self._in_tail():
            return self._abandoned(math.inf)[1]
        cutoff = self.straggler_age_cutoff()
        if self.max_copies <= 1 or not math.isfinite(cutoff):
            return None
        out = self._refresh_outstanding()
        if not out.size:
            return None
        since = np.where(self._copies[out] < self.max_copies, self._leased_at[out], self._last_leased_at[out])
        return float(since.min()) + cutoff

    def _in_tail(self) -> bool:
        return 0 < self.outstanding <= max(1, int(self.size * self.tail_fraction))

    def _refresh_outstanding(self) -> npt.NDArray[np.int64]:
        """Unfinished items, from a list refreshed as 1% more items finish (the tail's requests
        scan the few outstanding items, not all of them)."""
        if self._outstanding_at is None or self._n_done - self._outstanding_at >= max(1, self.size // 100):
            self._outstanding = np.flatnonzero(~self._done)
            self._outstanding_at = self._n_done
        out = self._outstanding
        return out[~self._done[out]]

    def _backup_hoarded(self, held: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """One copy of an outstanding item that only a lease of an unproven id holds, for a proven
        worker that would idle: made-up ids hold up to half an iteration (runtime.PROBATION_FRACTION)
        and answer nothing, and waiting for the abandon rule (4 x the typical item time) cut one
        honest worker's iterations by 3-5x. A new worker's honest items get a redundant copy at most."""
        idx = held[held < self.size]
        idx = idx[~self._done[idx] & (self._copies[idx] < 2)]
        if not idx.size:
            return idx
        self.speculative += 1
        return np.array([idx[np.argmin(self._leased_at[idx])]], np.int64)

    def _speculate(self, now: float) -> npt.NDArray[np.int64]:
        """The iteration's tail: every item is leased and none has expired, so this worker would
        idle at the barrier. Give it a backup copy of one outstanding item (MapReduce's backup
        tasks, Dean & Ghemawat 2004) of a straggler (see :meth:`straggler_age_cutoff`): the one
        with the fewest copies, leased longest ago. The first result wins; later copies are
        counted as ``redundant``. One item per lease, so idle workers spread over the outstanding
        items instead of one worker queueing many."""
        if not self._in_tail():
            lone, _ = self._abandoned(now)
            if lone is None:
                return np.zeros(0, np.int64)
            self.speculative += 1
            return np.array([lone], np.int64)
        cutoff = self.straggler_age_cutoff()
        if self.max_copies <= 1 or not math.isfinite(cutoff):
            return np.zeros(0, np.int64)
        out = self._refresh_outstanding()
        late = now - cutoff
        # A copy can be lost too (a worker or its connection dies with it): an item with all its
        # copies out gets one more once its latest copy is itself late, so the tail recovers in
        # seconds instead of waiting for the item timeout.
        cand = out[(self._leased_at[out] <= late) & ((self._copies[out] < self.max_copies) | (self._last_leased_at[out] <= late))]
        if len(cand) == 0:
            return cand
        best = cand[np.lexsort((self._leased_at[cand], self._copies[cand]))[0]]
        self.speculative += 1
        return np.array([best], np.int64)
