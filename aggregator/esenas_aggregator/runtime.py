"""Shared live state of one aggregator: the current iteration's queue, its parameters, workers seen.

The gRPC servicer and HTTP endpoints read it; the training loop (``app``) drives it, on one asyncio loop (no locks)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
from esenas.results import Carried
from esenas.topology import Topology

from esenas_aggregator.bounds import (
    ItemWatch,
    ResultBounds,
    checked_obs,
    decoded_results,
    failed_index,
)
from esenas_aggregator.carry import LateBook
from esenas_aggregator.judge import ItemJudge
from esenas_aggregator.leases import Lease, LeaseBook, LeaseState, held_mask
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.outcome import IngestOutcome
from esenas_aggregator.queue import WorkQueue
from esenas_aggregator.roster import MAX_WORKER_ID, Roster
from esenas_aggregator.straggler import GRACE_FACTOR
from esenas_aggregator.topologies import IterationTopologies

#: Most items in one lease (and records in one push): a relay's share of an iteration, 10,000
#: behind 8 relays at 10,000 workers, in one round, not three (workers: ``batchSize`` <= 4,096).
MAX_BATCH_ITEMS: Final = 16384
#: Longest a worker's Exchange may block waiting for work.
#: Long enough that idle workers at the barrier cost few calls (10,000 workers re-polling every
#: 2 s were 5,000 calls/s of nothing); a waiter wakes at once on a new iteration, an expired
#: lease or a straggler to back up.
MAX_WAIT_S: Final = 30.0
#: Fraction of an iteration's items that leases of unproven ids may hold together (at least one
#: batch): the proven workers can always bring half the items in, so the tail's abandon rule
#: learns the typical item time and backs up whatever a client hoards under made-up ids.
PROBATION_FRACTION: Final = 0.5
#: Under the straggler policy, how often the training loop re-checks whether the iteration may
#: close while the close time is not known yet (the fraction not in). A few cheap checks a second.
CLOSE_POLL_S: Final = 0.2


class Runtime(ItemJudge):
    """The aggregator's live state between the training loop and the network handlers."""

    def __init__(
        self, metrics: Metrics, item_timeout: float, obs_dim: int, bounds: ResultBounds | None = None,
        max_lease_items: int = MAX_BATCH_ITEMS,
    ) -> None:
        self.metrics = metrics
        self.session = secrets.randbits(63) | 1  # non-zero: 0 means "no session" on the wire
        self.queue = WorkQueue(item_timeout, obs_dim)
        self.leases = LeaseBook()
        self.bounds = bounds
        self.watch = ItemWatch(bounds)
        self.forward_confirmed = False  #: a relay's: what the watch confirms goes on upstream
        self.forward_failures: dict[int, str] = {}  #: a relay's: confirmed failed items, for its round
        #: Most items one lease (and so one worker) holds: the job's batch size.
        self.max_lease_items = max(1, min(max_lease_items, MAX_BATCH_ITEMS))
        self.obs_dim = obs_dim
        self.version = -1
        self.params_message: bytes | None = None  # serialised Params of `version`, built once
        self.done = False
        self.stopping = False
        self.iteration_complete = asyncio.Event()
        self._changed = asyncio.Event()
        self.topologies = IterationTopologies()
        self.roster = Roster(window=max(2 * MAX_WAIT_S, 2 * item_timeout))
        self.carries = True  #: pairs still out at a close join the next update (:mod:`carry`); a relay's drop
        self.late: LateBook | None = None  # the last closed iteration, while it takes its late pairs

    # ---------------------------------------------------------------- loop side

    def start_iteration(
        self,
        iteration: int,
        version: int,
        items: np.ndarray,
        params_message: bytes,
        topologies: Sequence[Topology] | Mapping[int, Topology] | IterationTopologies = (),
        min_pairs_fraction: float = 1.0,
    ) -> None:
        """Publish a new iteration's items, parameters and topology table; wake waiting workers.

        Topologies travel with the items that use them, not with the parameters: a population
        of 80,000 pairs has 80,000 topologies (75 MB for chromatic H41), which every worker
        would otherwise fetch whole although it evaluates eight of them.
        ``min_pairs_fraction`` is the spec's straggler policy (see :mod:`straggler`).
        """
        if self.late is not None and self.late.queue is self.queue:  # it keeps its queue and leases
            self.queue, self.leases = self.queue.successor(), LeaseBook()
        self.version = version
        self.params_message = params_message
        self.topologies = topologies if isinstance(topologies, IterationTopologies) else IterationTopologies(topologies)
        self.queue.carry_typical()
        self.iteration_complete.clear()
        self.queue.min_pairs_fraction = min_pairs_fraction
        self.queue.grace_factor = 0.0 if self.carries else GRACE_FACTOR  # carried pairs are not lost: no wait for them
        self.queue.start(iteration, items)
        self.leases.reset()
        if (broadcast := self.roster.new_iteration()) is not None:
            self.metrics.broadcast.observe(broadcast)
        self._notify()

    def set_obs_dim(self, obs_dim: int) -> None:
        """Size of the results' observation statistics from the next iteration on (a relay's)."""
        self.obs_dim = self.queue.obs_dim = obs_dim

    async def wait_closable(self) -> None:
        """Until the iteration may close: every item in, or the straggler policy's grace over
        (then :meth:`close_iteration`). With the policy off it is one wait on the last result."""
        while True:
            now = time.monotonic()
            if self.queue.closable(now) or self.job_failure is not None or self.forward_failures:
                return
            timeout: float | None = None
            if self.queue.min_pairs_fraction < 1.0:
                due = self.queue.close_time()
                timeout = CLOSE_POLL_S if due is None else max(0.001, due - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.iteration_complete.wait(), timeout)

    @property
    def job_failure(self) -> str | None:
        """Why the job cannot go on: items out of bounds or failing for two workers (see
        :class:`ItemWatch`), else None; always None at a relay, which hands them on."""
        return None if self.forward_confirmed else self.watch.confirmed

    def close_iteration(self) -> tuple[int, Carried | None]:
        """Stop leasing the current iteration. Returns the pairs still out, whose results the next
        iteration takes (:mod:`carry`; at a relay they are dropped: stale), and the previous
        iteration's that came in meanwhile (None: nothing was carried); a worker pushing late gets
        the next iteration's items in the same Exchange reply."""
        carried = None
        if self.late is not None:
            carried, missing = self.late.take()
            self.late = None
            self.metrics.pairs_carried.inc(len(carried))
            self.metrics.pairs_dropped.inc(missing)
        out = 0 if self.queue.complete else self.queue.close()
        if out and self.carries:
            self.late = LateBook.of(self.queue, self.leases)
        elif out:
            self.metrics.pairs_dropped.inc(out)
        return out, carried

    def finish(self) -> None:
        """The job is done: every pull from now on answers done; pairs still carried join no update."""
        if self.late is not None:
            carried, missing = self.late.take()
            self.metrics.pairs_dropped.inc(len(carried) + missing)
            self.late = None
        self.done = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ---------------------------------------------------------------- worker side

    def seen(self, worker_id: str, now: float | None = None) -> None:
        """A call from ``worker_id`` (see :class:`Roster`)."""
        self.roster.seen(worker_id[:MAX_WORKER_ID], now)

    def proven(self, worker_id: str) -> bool:
        return self.roster.proven(worker_id)

    def probation_cap(self) -> int:
        """Most items the open leases of unproven ids may hold together (see
        :data:`PROBATION_FRACTION`)."""
        return max(self.max_lease_items, int(self.queue.size * PROBATION_FRACTION))

    def _probation_room(self, q: WorkQueue) -> int:
        """Items an unproven worker may lease now: within the probation cap, and none when only
        backup copies are left while some worker is proven, so the backups of what made-up ids
        hold go to workers that have returned work (never to the next made-up id)."""
        self.leases.uncount_timed_out(time.monotonic())
        room = self.probation_cap() - self.leases.probation_items
        if room > 0 and self.roster.any_proven and q.fresh_remaining == 0:
            now = time.monotonic()
            expired = q.next_deadline(now)
            if expired is None or expired > now:  # nothing fresh or expired: a lease would be a backup
                return 0
        return room

    def utilization(self) -> float:
        """Busy workers (their last pull got items) over connected ones; 0 with none connected."""
        return self.roster.utilization()

    def params_for(self, samples: bool) -> bytes | None:
        """The current version's serialised Params; with the sampler for a caller that samples."""
        return (self.topologies.sampling_params if samples else None) or self.params_message

    def connected(self, now: float | None = None) -> int:
        """Workers whose results were accepted within the window (see :meth:`Roster.connected`)."""
        return self.roster.connected(now)

    def push(
        self, session: int, iteration: int, results: bytes, obs_stats: bytes, lease_id: int = 0, worker_id: str = "",
        failed: bytes = b"", failure: str = "", keep: bool = False,
    ) -> IngestOutcome:
        """Take one batch of results for ``lease_id``, which this closes (``keep``: more follow, it stays
        open), and the items whose rollout ``failed`` (``failure``: why); returns what was accepted,
        dropped and rejected (by reason)."""
        if (late := self.late) is not None and session == self.session and iteration == late.iteration:
            out = late.push(results, obs_stats, lease_id, worker_id[:MAX_WORKER_ID], self.bounds, self.obs_dim, keep)
        else:
            out = self._push(session, iteration, results, obs_stats, lease_id, worker_id[:MAX_WORKER_ID], failed, failure, keep)
        self.metrics.count(out)
        if out.redundant:
            self.metrics.redundant.inc(out.redundant)
        if out.accepted:
            self.roster.worked(worker_id[:MAX_WORKER_ID])
        if self.queue.closable(time.monotonic()):
            self.iteration_complete.set()
        return out

    def _push(
        self, session: int, iteration: int, results: bytes, obs_stats: bytes, lease_id: int, worker_id: str, failed: bytes, failure: str,
        keep: bool,
    ) -> IngestOutcome:
        out = IngestOutcome()
        if (records := decoded_results(results, out)) is None:
            return out
        q = self.queue
        if session != self.session or iteration < q.iteration or (iteration == q.iteration and q.closed):
            out.stale = len(records)
            return out
        if iteration != q.iteration or q.size == 0:
            out.reject("unknown_iteration", len(records))
            return out
        state = self.leases.state(lease_id, worker_id)
        if state is not LeaseState.OPEN:
            out.reject("replay" if state is LeaseState.CLOSED else "not_leased", len(records))
            return out
        held = self.leases.keep(lease_id) if keep else self.leases.close(lease_id)
        try:
            if failed:
                self._failed(failed_index(failed, held, out), failure, worker_id)
            ours = held_mask(records["index"], held)
            out.reject("not_leased", int((~ours).sum()))
            records = records[ours]
            obs, trusted = checked_obs(self.bounds, self.obs_dim, obs_stats, records, out)
            if not trusted:
                records = records[:0]  # statistics no rollout makes: nothing of the batch is trusted
            if self.bounds is not None and len(records):
                records = self._within_bounds(records, out, worker_id)
            if out.rejected_total:
                obs = None  # statistics are per batch: merge them only from a wholly good one
            got = q.ingest(iteration, records, obs)
            for reason, n in out.rejected.items():
                got.reject(reason, n)
            return got
        finally:
            self._requeue(held[:0] if keep else held, iteration)

    def _requeue(self, index: np.ndarray, iteration: int) -> None:
        """Items of a closed lease left without a result go back to the queue at once."""
        left = self.queue.unfinished(index) if len(index) else index  # most calls: no lease to hand back
        if len(left):
            self.queue.release(left, iteration, time.monotonic())
            self.metrics.released.inc(len(left))
            self._notify()

    async def pull(self, max_items: int, wait_ms: int, worker_id: str = "", samples: bool = False) -> Lease:
        """Lease a fair share of free items, waiting up to ``wait_ms`` for some to appear.
        Asking for work while holding a lease abandons that lease (see :mod:`leases`)."""
        worker_id = worker_id[:MAX_WORKER_ID]
        self.seen(worker_id)
        if max_items > 0:
            self._requeue(self.leases.abandon(worker_id), self.queue.iteration)
        lease = await self._pull(min(max_items, self.max_lease_items), wait_ms, worker_id, samples)
        self.roster.pulled(worker_id, bool(lease.items))
        return lease

    def release(self, lease: Lease) -> None:
        """A lease that could not be delivered: its items are re-issued at once."""
        if lease.iteration == self.queue.iteration:
            self._requeue(self.leases.close(lease.lease_id), lease.iteration)

    def fair_share(self, worker_id: str) -> int:
        """Items for this worker's next lease: the fresh items left, spread over the connected
        workers not yet served this iteration (808 items on 100 workers: 9 to eight of them and 8
        to the rest, never 9 to 89 and none to 11). A served worker asking again gets the fresh
        items left over all connected workers (guided self-scheduling): shares shrink as the
        iteration drains, so the tail balances itself. Workers are the proven ones (see
        :meth:`proven`) plus at most roster.BOOTSTRAP_IDS others, so made-up ids cannot shrink
        everyone's share; before any worker is proven (a job's start) every caller counts."""
        fresh = self.queue.fresh_remaining
        workers = self.roster.share_workers()
        if worker_id in self.roster.served:
            return max(1, math.ceil(fresh / workers))
        waiting = max(1, workers - len(self.roster.served))
        return max(1, math.ceil(fresh / waiting))

    async def _pull(self, max_items: int, wait_ms: int, worker_id: str, samples: bool) -> Lease:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait_ms / 1000.0, MAX_WAIT_S)
        refused = False
        while True:
            if self.done or self.stopping:
                return Lease(self.queue.iteration, self.version, b"", self.done, 1000)
            q = self.queue
            probation = not self.proven(worker_id)
            room = self._probation_room(q) if probation else MAX_BATCH_ITEMS
            full = probation and self.leases.probation_items >= self.probation_cap()
            if full and not refused and max_items > 0 and not q.complete and q.size and not q.closed:
                refused = True  # counted once per pull: unproven ids hold their share already
                self.metrics.probation_refused.inc()
            if max_items > 0 and not q.complete and q.size and room > 0:
                share = self.fair_share(worker_id)
                before, spec_before = q.reissued, q.speculative
                avoid = self.watch.avoid(worker_id, q.iteration) if self.roster.callers > 1 else None
                hoarded = None if probation else self.leases.probation_held()
                items = q.lease(min(max_items, MAX_BATCH_ITEMS, share, room), time.monotonic(), avoid, hoarded)
                if q.reissued != before:
                    self.metrics.reissued.inc(q.reissued - before)
                if q.speculative != spec_before:
                    self.metrics.speculative.inc(q.speculative - spec_before)
                if len(items):
                    if q.closable(time.monotonic()):  # this lease handed out the last fresh item
                        self.iteration_complete.set()
                    self.roster.serve(worker_id)
                    # one open lease per id: a pull of the same id that got items while this one
                    # waited hands them back now (16 concurrent pulls under one id held 16 leases)
                    self._requeue(self.leases.abandon(worker_id), q.iteration)
                    index, blob, pairs = self.topologies.payload(items, samples)
                    lease_id = self.leases.issue(worker_id, items["index"], probation, time.monotonic() + q.item_timeout)
                    return Lease(q.iteration, self.version, items.tobytes(), False, 0, index, blob, lease_id, pairs)
            remaining = deadline - loop.time()
            if remaining <= 0 or max_items <= 0:
                return Lease(q.iteration, self.version, b"", False, 200)
            now = time.monotonic()
            for wake in (q.next_deadline(now), q.next_straggler_time()):
                if wake is not None:
                    remaining = min(remaining, max(0.001, wake - now))
            with contextlib.suppress(TimeoutError):  # not wait_for: its task per wait costs the barrier
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
