"""The straggler policy: an iteration may close before its slowest pairs are in.

OpenAI ES (Salimans et al. 2017, section 2.2) and ARS drop the slowest rollouts of an iteration
instead of waiting for them. Here, with ``es.minPairsFraction`` = F < 1, an iteration may close
once F of its pairs (an item carries both rollouts of its pair, so a pair is in whole or not at
all) and every exact eval are in, and every item has been handed out (while fresh items are left
the fleet is not idle, and closing would only shrink the population), plus a grace of
``GRACE_FACTOR`` times the median lease-to-result time of the items done, counted from the
moment both held. The
grace lets the pairs just behind the fraction in, where pairs left out are lost: at a relay,
whose round is handed upstream when it closes. The aggregator carries the pairs still out into
the next iteration's update (:mod:`carry`), so it closes with no grace. The update uses the pairs
that arrived (:meth:`esenas.algorithm.ESENAS.tell`). F = 1 (the default) waits for every item,
as before. A mixin of :class:`~esenas_aggregator.queue.WorkQueue`.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from esenas.es import min_pairs
from esenas_api.wire import KIND_PAIR

#: Grace after the fraction is in, in median lease-to-result times of the iteration's items.
#: With 8 pairs per worker that time is a typical worker's share, so a pair is dropped only when it
#: is still out a quarter of a share after the F-th fastest. Measured (bench/results/scale.md,
#: heavy-tailed episodes, 1,000 workers, F = 0.9): 0.5 dropped ~0.6% of the pairs and saved ~10%
#: of the iteration time; 0.25 and 0.1 both dropped ~1.5% and saved 13-33% (noisy machine). The
#: larger of the two keeps more of the long episodes for the same gain.
GRACE_FACTOR: Final = 0.25


class ClosePolicy:
    """When an iteration may close without its stragglers, and what closing leaves out."""

    min_pairs_fraction: float
    grace_factor: float
    closed: bool
    _items: npt.NDArray[np.void]
    _done: npt.NDArray[np.bool_]
    _now: float
    _fresh: int

    @property
    def size(self) -> int:
        raise NotImplementedError

    @property
    def complete(self) -> bool:
        raise NotImplementedError

    def _typical(self) -> float:
        raise NotImplementedError

    def _start_close(self) -> None:
        """Counters of a new iteration (called from ``WorkQueue._start``)."""
        pair = self._items["kind"] == KIND_PAIR
        self.closed = False
        self._pairs_total = int(pair.sum())
        self._exact_total = self.size - self._pairs_total
        self._pairs_done = 0
        self._exact_done = 0
        self._pairs_needed = min_pairs(self._pairs_total, self.min_pairs_fraction)
        self._enough_at: float | None = None  # when the fraction and every exact eval were in
        self._drained_at: float | None = None  # when the last fresh item was first leased

    def _count_done(self, pairs: int, exact: int) -> None:
        """Items just stored; notes the moment the close rule's fraction is first met."""
        self._pairs_done += pairs
        self._exact_done += exact
        if (
            self._enough_at is None
            and self._pairs_done >= self._pairs_needed
            and self._exact_done == self._exact_total
        ):
            self._enough_at = self._now

    @property
    def pairs_outstanding(self) -> int:
        return self._pairs_total - self._pairs_done

    def _drained(self, now: float) -> None:
        """Every item has now been leased at least once (called from ``WorkQueue.lease``)."""
        if self._drained_at is None and self._fresh == self.size:
            self._drained_at = now

    def close_time(self) -> float | None:
        """When this iteration may close with pairs still out (None: not yet known, or never:
        F = 1, the fraction or an exact eval not in, an item never leased, or no item time
        measured yet)."""
        if self.min_pairs_fraction >= 1.0 or self._enough_at is None or self._drained_at is None or self.closed:
            return None
        typical = self._typical()
        if not math.isfinite(typical):
            return None
        return max(self._enough_at, self._drained_at) + self.grace_factor * typical

    def closable(self, now: float) -> bool:
        """Every item is in, or the straggler policy allows closing now."""
        if self.complete:
            return True
        t = self.close_time()
        return t is not None and now >= t

    def close(self) -> int:
        """Close the iteration: no more leases, later results count as stale. Returns the pairs
        left out of the update."""
        self.closed = True
        return self.pairs_outstanding
