"""Items that went wrong for a worker: returns out of bounds, rollouts that failed in the environment.

A mixin of :class:`~esenas_aggregator.runtime.Runtime`: each such item is counted and re-issued, and
once two workers (or the only one, twice) agree (:class:`~esenas_aggregator.bounds.ItemWatch`), the
training loop is woken to judge it (:mod:`verify`), or a relay hands it on to the aggregator.
"""

from __future__ import annotations

import asyncio

import numpy as np

from esenas_aggregator.bounds import ItemWatch, ResultBounds
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.outcome import IngestOutcome
from esenas_aggregator.queue import WorkQueue
from esenas_aggregator.roster import Roster


class ItemJudge:
    """What a worker's results say went wrong, in the current iteration."""

    bounds: ResultBounds | None
    queue: WorkQueue
    watch: ItemWatch
    roster: Roster
    metrics: Metrics
    forward_confirmed: bool
    forward_failures: dict[int, str]
    iteration_complete: asyncio.Event

    def _within_bounds(self, records: np.ndarray, out: IngestOutcome, worker_id: str) -> np.ndarray:
        assert self.bounds is not None
        idx = records["index"].astype(np.int64)
        keep = np.ones(len(records), dtype=bool)
        for reason, bad in self.bounds.check(records, self.queue.kinds(idx)).items():
            bad &= keep
            if reason == "reward_bound" and bad.any():  # the task's own returns, or one caller's? (ItemWatch)
                at = np.flatnonzero(bad)
                confirmed = self.watch.out_of_bounds(self.queue.iteration, idx[at], records[at], worker_id, self.roster.callers <= 1)
                if self.forward_confirmed:  # a relay: the aggregator judges them
                    bad[at[confirmed]] = False
                elif confirmed.any():
                    self.iteration_complete.set()
            out.reject(reason, int(bad.sum()))
            keep &= ~bad
        return records[keep]

    def _failed(self, index: np.ndarray, failure: str, worker_id: str) -> None:
        """Items whose rollout failed in the environment: re-issued (their lease is closed), and
        once two workers agree (ItemWatch) the job fails, or a relay hands them on."""
        unfinished = self.queue.unfinished(index)
        self.metrics.rollouts_failed.inc(len(unfinished))
        if not len(unfinished):
            return
        confirmed = self.watch.failed(self.queue.iteration, unfinished, failure, worker_id, self.roster.callers <= 1)
        if self.forward_confirmed:
            self.forward_failures.update(dict.fromkeys(unfinished[confirmed].tolist(), failure))
        if confirmed.any():
            self.iteration_complete.set()
