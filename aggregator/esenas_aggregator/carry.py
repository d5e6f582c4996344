"""Pairs still out when an iteration closes are carried into the next update, not dropped.

Under the straggler policy (``es.minPairsFraction`` < 1, :mod:`straggler`) an iteration closes once
that fraction of its pairs and every exact eval are in, so its idle workers start the next one at
once instead of waiting at the barrier for the longest episodes. The workers still rolling out the
closed iteration's pairs go on (they hear of the new iteration at their next exchange), and what
they push while the next iteration runs is taken here, checked as any result (their leases, the
bounds, the observation statistics), and handed to that iteration's ``tell`` as
:class:`esenas.results.Carried`: pairs rolled out around the previous centre, one step stale, in
its ES step (asynchronous ES with a staleness of one; pairs left out of a step used to bias it
against long episodes, docs/operations.md). Pairs not in by the end of that next iteration are
dropped (``esenas_pairs_dropped_total``); carried ones count in ``esenas_pairs_carried_total``.
With F = 1 (the default) every iteration completes and nothing is carried.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from esenas.results import KIND_PAIR, Carried

from esenas_aggregator.bounds import ResultBounds, checked_obs, decoded_results
from esenas_aggregator.leases import LeaseBook, LeaseState, held_mask
from esenas_aggregator.outcome import IngestOutcome
from esenas_aggregator.queue import WorkQueue


@dataclass
class LateBook:
    """A closed iteration's queue and leases, taking the results of its pairs still out."""

    queue: WorkQueue
    leases: LeaseBook
    done_at_close: np.ndarray
    obs_at_close: tuple[float, np.ndarray, np.ndarray]

    @classmethod
    def of(cls, queue: WorkQueue, leases: LeaseBook) -> LateBook:
        return cls(queue, leases, queue.progress()[0].copy(), queue.obs_sums())

    @property
    def iteration(self) -> int:
        return self.queue.iteration

    def push(
        self, results: bytes, obs_stats: bytes, lease_id: int, worker_id: str, bounds: ResultBounds | None, obs_dim: int,
        keep_lease: bool = False,
    ) -> IngestOutcome:
        """One batch for an open lease of the closed iteration, checked as :meth:`Runtime.push`
        checks one (failed items are not judged: the next iteration goes on without them);
        ``keep_lease``: more results for the lease follow, so it stays open."""
        out = IngestOutcome()
        if (records := decoded_results(results, out)) is None:
            return out
        if self.leases.state(lease_id, worker_id) is not LeaseState.OPEN:
            out.stale = len(records)
            return out
        held = self.leases.keep(lease_id) if keep_lease else self.leases.close(lease_id)
        ours = held_mask(records["index"], held)
        out.reject("not_leased", int((~ours).sum()))
        records = records[ours]
        obs, trusted = checked_obs(bounds, obs_dim, obs_stats, records, out)
        if not trusted:
            records = records[:0]
        if bounds is not None and len(records):
            keep = np.ones(len(records), dtype=bool)
            for reason, bad in bounds.check(records, self.queue.kinds(records["index"].astype(np.int64))).items():
                bad &= keep
                out.reject(reason, int(bad.sum()))
                keep &= ~bad
            records = records[keep]
        if out.rejected_total:
            obs = None
        got = self.queue.ingest(self.iteration, records, obs, late=True)
        for reason, n in out.rejected.items():
            got.reject(reason, n)
        return got

    def take(self) -> tuple[Carried, int]:
        """The pairs that came in since the close, and how many of those out then never did."""
        done, reward_pos, reward_neg, steps = self.queue.progress()
        pair = self.queue.kinds(np.arange(self.queue.size)) == KIND_PAIR
        late = done & ~self.done_at_close & pair
        missing = int((~done & pair).sum())
        count, total, sumsq = self.queue.obs_sums()
        c0, t0, s0 = self.obs_at_close
        carried = Carried(self.queue.seeds(late), reward_pos[late].copy(), reward_neg[late].copy(), steps[late].copy(),
                          count - c0, total - t0, sumsq - s0)
        return carried, missing
