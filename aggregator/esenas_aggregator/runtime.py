"""Shared live state of one aggregator: the current iteration's queue, its parameters, workers seen.

The gRPC servicer and the HTTP endpoints read it; the training loop (``app``) drives it.
Everything runs on one asyncio loop, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from esenas.api import wire
from esenas.topology import Topology, encode_topologies

from esenas_aggregator.metrics import Metrics
from esenas_aggregator.queue import IngestOutcome, WorkQueue

#: Most items in one lease, and so most records in one pushed batch.
MAX_BATCH_ITEMS: Final = 4096
#: Longest a worker's Exchange may block waiting for work.
#: Long enough that idle workers at the barrier cost few calls (10,000 workers re-polling every
#: 2 s were 5,000 calls/s of nothing); a waiter wakes at once on a new iteration, an expired
#: lease or a straggler to back up.
MAX_WAIT_S: Final = 30.0
#: Longest a worker id may be (it is only counted; this bounds memory).
MAX_WORKER_ID: Final = 253


@dataclass(frozen=True)
class Lease:
    """A reply to a pull: work items of one iteration, or done, or come back later."""

    iteration: int
    version: int
    items: bytes
    done: bool
    retry_after_ms: int
    #: The topologies these items use: packed uint32 table indices and the compact blob.
    topology_index: bytes = b""
    topologies: bytes = b""


class Runtime:
    """The aggregator's live state between the training loop and the network handlers."""

    def __init__(self, metrics: Metrics, item_timeout: float, obs_dim: int) -> None:
        self.metrics = metrics
        self.session = secrets.randbits(63) | 1  # non-zero: 0 means "no session" on the wire
        self.queue = WorkQueue(item_timeout, obs_dim)
        self.obs_dim = obs_dim
        self.version = -1
        self.params_message: bytes | None = None  # serialised Params of `version`, built once
        self.done = False
        self.stopping = False
        self.iteration_complete = asyncio.Event()
        self._changed = asyncio.Event()
        self._seen: dict[str, float] = {}
        self._busy: set[str] = set()  # workers whose last pull got items (bounded by _seen)
        self._topologies: Sequence[Topology] = ()
        self._served: set[str] = set()  # workers that got items of this iteration
        self.connected_window = max(2 * MAX_WAIT_S, 2 * item_timeout)  # a long-polling worker stays counted

    # ---------------------------------------------------------------- loop side

    def start_iteration(
        self,
        iteration: int,
        version: int,
        items: np.ndarray,
        params_message: bytes,
        topologies: Sequence[Topology] = (),
    ) -> None:
        """Publish a new iteration's items, parameters and topology table; wake waiting workers.

        Topologies travel with the items that use them, not with the parameters: a population
        of 80,000 pairs has 80,000 topologies (75 MB for chromatic H41), which every worker
        would otherwise fetch whole although it evaluates eight of them.
        """
        self.version = version
        self.params_message = params_message
        self._topologies = topologies
        self.iteration_complete.clear()
        self.queue.start(iteration, items)
        self._served = set()
        self._notify()

    def finish(self) -> None:
        """The job is done: every pull from now on answers done."""
        self.done = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ---------------------------------------------------------------- worker side

    def seen(self, worker_id: str, now: float | None = None) -> None:
        self._seen[worker_id[:MAX_WORKER_ID]] = time.monotonic() if now is None else now

    def utilization(self) -> float:
        """Busy workers (their last pull got items) over connected ones; 0 with none connected."""
        connected = self.connected()
        self._busy &= self._seen.keys()
        return len(self._busy) / connected if connected else 0.0

    def _topology_payload(self, items: np.ndarray) -> tuple[bytes, bytes]:
        if not self._topologies:
            return b"", b""
        uniq = np.unique(items["topology"])
        blob = encode_topologies([self._topologies[int(i)] for i in uniq])
        return uniq.astype("<u4").tobytes(), blob

    def connected(self, now: float | None = None) -> int:
        """Workers heard from within the window; forgets the others (bounded memory)."""
        now = time.monotonic() if now is None else now
        cutoff = now - self.connected_window
        stale = [w for w, t in self._seen.items() if t < cutoff]
        for w in stale:
            del self._seen[w]
            self._busy.discard(w)
        return len(self._seen)

    def push(self, session: int, iteration: int, results: bytes, obs_stats: bytes) -> IngestOutcome:
        """Take one batch of results; returns what was accepted, dropped and rejected."""
        try:
            records = wire.decode_results(results)
        except wire.WireError:
            out = IngestOutcome()
            out.reject("malformed", max(1, len(results) // wire.RESULT_DTYPE.itemsize))
            self.metrics.count(out)
            return out
        if session != self.session:
            out = IngestOutcome(stale=len(records))
            self.metrics.count(out)
            return out
        obs = None
        if obs_stats:
            try:
                obs = wire.decode_obs_stats(obs_stats, self.obs_dim)
            except wire.WireError:
                out = IngestOutcome()
                out.reject("malformed", len(records))
                self.metrics.count(out)
                return out
        out = self.queue.ingest(iteration, records, obs)
        self.metrics.count(out)
        if out.redundant:
            self.metrics.redundant.inc(out.redundant)
        if self.queue.complete:
            self.iteration_complete.set()
        return out

    async def pull(self, max_items: int, wait_ms: int, worker_id: str = "") -> Lease:
        """Lease a fair share of free items, waiting up to ``wait_ms`` for some to appear."""
        worker_id = worker_id[:MAX_WORKER_ID]
        lease = await self._pull(max_items, wait_ms, worker_id)
        if lease.items:
            self._busy.add(worker_id)
        else:
            self._busy.discard(worker_id)
        return lease

    def release(self, lease: Lease) -> None:
        """A lease that could not be delivered: its items are re-issued at once."""
        items = wire.decode_items(lease.items)
        self.queue.release(items["index"], lease.iteration, time.monotonic())
        self.metrics.released.inc(len(items))
        self._notify()

    def fair_share(self, worker_id: str) -> int:
        """Items for this worker's next lease: the fresh items left, spread over the connected
        workers not yet served this iteration (808 items on 100 workers: 9 to eight of them and 8
        to the rest, never 9 to 89 and none to 11). A served worker asking again gets the fresh
        items left over all connected workers (guided self-scheduling): shares shrink as the
        iteration drains, so the tail balances itself."""
        fresh = self.queue.fresh_remaining
        if worker_id in self._served:
            return max(1, math.ceil(fresh / max(1, len(self._seen))))
        waiting = max(1, len(self._seen) - len(self._served))  # O(1): this runs on every pull
        return max(1, math.ceil(fresh / waiting))

    async def _pull(self, max_items: int, wait_ms: int, worker_id: str = "") -> Lease:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait_ms / 1000.0, MAX_WAIT_S)
        while True:
            if self.done or self.stopping:
                return Lease(self.queue.iteration, self.version, b"", self.done, 1000)
            q = self.queue
            if max_items > 0 and not q.complete and q.size:
                share = self.fair_share(worker_id)
                before, spec_before = q.reissued, q.speculative
                items = q.lease(min(max_items, MAX_BATCH_ITEMS, share), time.monotonic())
                if q.reissued != before:
                    self.metrics.reissued.inc(q.reissued - before)
                if q.speculative != spec_before:
                    self.metrics.speculative.inc(q.speculative - spec_before)
                if len(items):
                    self._served.add(worker_id)
                    index, blob = self._topology_payload(items)
                    return Lease(q.iteration, self.version, items.tobytes(), False, 0, index, blob)
            remaining = deadline - loop.time()
            if remaining <= 0 or max_items <= 0:
                return Lease(q.iteration, self.version, b"", False, 200)
            now = time.monotonic()
            for wake in (q.next_deadline(now), q.next_straggler_time()):
                if wake is not None:
                    remaining = min(remaining, max(0.001, wake - now))
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=remaining)
