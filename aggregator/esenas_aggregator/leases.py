"""Who holds which items of the current iteration: leases named by unguessable ids.

A result counts only when it answers a lease the sender holds, so a worker with the job's
token still cannot answer for items leased to another (and so have the honest result
dropped as a duplicate). Each worker holds one lease at a time, as an honest worker does
(it pushes a lease's results in the same call that pulls the next one): pulling again
abandons the previous lease, and pushing closes it. Either way the lease's items left
without a result go back to the queue at once, so a worker that hoards items by pulling
and never answering holds at most one lease's worth. A client that makes up a new worker id
for every pull is bounded differently: leases of unproven ids (none of their results accepted
yet) are on probation, and the runtime caps the items all of them hold together.
"""

from __future__ import annotations

import heapq
import math
import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Final

import numpy as np
import numpy.typing as npt

_EMPTY: Final = np.zeros(0, np.int64)


@dataclass(frozen=True)
class Lease:
    """A reply to a pull: work items of one iteration, or done, or come back later."""

    iteration: int
    version: int
    items: bytes
    done: bool
    retry_after_ms: int
    #: The topologies these items use: packed uint32 table indices and the compact blob, and
    #: for a caller that samples, (table index, sample position) pairs (see :mod:`topologies`).
    topology_index: bytes = b""
    topologies: bytes = b""
    #: The lease's id, sent back with its results (0: no items).
    lease_id: int = 0
    topology_samples: bytes = b""


class LeaseState(Enum):
    OPEN = "open"
    #: Answered or abandoned earlier in this iteration: a push against it is a replay.
    CLOSED = "closed"
    #: Never issued to this worker in this iteration.
    UNKNOWN = "unknown"


@dataclass
class _Held:
    worker: str
    index: npt.NDArray[np.int64]  # item indices of the lease, sorted
    probation: bool = False  # issued to a worker none of whose results was accepted yet
    counted: bool = False  # its items count in LeaseBook.probation_items (until it closes or times out)


class LeaseBook:
    """Open and closed leases of one iteration; reset when the next one starts."""

    def __init__(self) -> None:
        self._open: dict[int, _Held] = {}
        self._closed: set[int] = set()
        self._by_worker: dict[str, int] = {}
        self._kept: dict[str, int] = {}  # a worker's lease kept open by a push with keep_lease (see keep)
        #: Items in open leases on probation (see the module doc) not yet past their item timeout.
        self.probation_items = 0
        self._probation_due: list[tuple[float, int]] = []  # (timeout, lease id), a heap
        self._probation_open: dict[int, npt.NDArray[np.int64]] = {}  # open leases on probation: their items
        self._probation_held: npt.NDArray[np.int64] | None = _EMPTY  # their items together (None: to rebuild)

    def reset(self) -> None:
        self._open.clear()
        self._closed.clear()
        self._by_worker.clear()
        self._kept.clear()
        self.probation_items = 0
        self._probation_due.clear()
        self._probation_open.clear()
        self._probation_held = _EMPTY

    def issue(self, worker: str, index: npt.ArrayLike, probation: bool = False, timeout_at: float = math.inf) -> int:
        """A new lease on ``index`` for ``worker``; returns its id (64 random bits, never 0).
        The worker's previous lease must have been closed first (:meth:`abandon`). A lease on
        probation stops counting in :attr:`probation_items` at ``timeout_at`` (:meth:`uncount_timed_out`)."""
        lease_id = secrets.randbits(64) | 1
        while lease_id in self._open or lease_id in self._closed:
            lease_id = secrets.randbits(64) | 1
        held = _Held(worker, np.sort(np.asarray(index, np.int64)), probation, counted=probation)
        self._open[lease_id] = held
        self._by_worker[worker] = lease_id
        if probation:
            self.probation_items += len(held.index)
            heapq.heappush(self._probation_due, (timeout_at, lease_id))
            self._probation_open[lease_id], self._probation_held = held.index, None
        return lease_id

    def probation_held(self) -> npt.NDArray[np.int64]:
        """The items that open leases on probation hold (some may have results already)."""
        if self._probation_held is None:
            v = list(self._probation_open.values())
            self._probation_held = np.concatenate(v) if v else _EMPTY
        return self._probation_held

    def uncount_timed_out(self, now: float) -> None:
        """Leases on probation past their item timeout stop counting in :attr:`probation_items`:
        their items are re-issued by the queue, and a worker that died holding them (an OOM kill
        at a job's start, before any worker is proven) must not keep every other unproven worker
        waiting. The lease stays open, so a slow worker's late results still count."""
        due = self._probation_due
        while due and due[0][0] <= now:
            _, lease_id = heapq.heappop(due)
            held = self._open.get(lease_id)
            if held is not None and held.counted:
                held.counted = False
                self.probation_items -= len(held.index)

    def state(self, lease_id: int, worker: str) -> LeaseState:
        held = self._open.get(lease_id)
        if held is not None and held.worker == worker:
            return LeaseState.OPEN
        if lease_id in self._closed:
            return LeaseState.CLOSED
        return LeaseState.UNKNOWN

    def close(self, lease_id: int) -> npt.NDArray[np.int64]:
        """Close a lease; returns its items (the caller re-issues those still without a result)."""
        held = self._open.pop(lease_id, None)
        if held is None:
            return _EMPTY
        self._closed.add(lease_id)
        if held.probation:
            del self._probation_open[lease_id]
            self._probation_held = None
        if held.counted:
            self.probation_items -= len(held.index)
        if self._by_worker.get(held.worker) == lease_id:
            del self._by_worker[held.worker]
        if self._kept.get(held.worker) == lease_id:
            del self._kept[held.worker]
        return held.index

    def keep(self, lease_id: int) -> npt.NDArray[np.int64]:
        """An open lease's items (sorted), leaving it open for more of its results (a push with
        ``keep_lease``: a relay's round whose stragglers are still out). Its worker may lease again
        meanwhile, and keeps one such lease at a time: keeping another closes the first (its items
        left without a result come back by the item timeout or the tail's abandon rule)."""
        held = self._open.get(lease_id)
        if held is None:
            return _EMPTY
        if self._by_worker.get(held.worker) == lease_id:
            del self._by_worker[held.worker]
        if (previous := self._kept.get(held.worker)) is not None and previous != lease_id:
            self.close(previous)
        self._kept[held.worker] = lease_id
        return held.index

    def abandon(self, worker: str) -> npt.NDArray[np.int64]:
        """The worker asks for new work while holding a lease: close that one (see module doc)."""
        lease_id = self._by_worker.get(worker)
        return _EMPTY if lease_id is None else self.close(lease_id)

    def held(self, worker: str) -> int:
        """Items of the worker's open lease (0 when it holds none)."""
        lease_id = self._by_worker.get(worker)
        return 0 if lease_id is None else len(self._open[lease_id].index)


def held_mask(index: npt.ArrayLike, held: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Which of ``index`` a lease holds, ``held`` being its items as :meth:`LeaseBook.close`
    returns them (sorted). A binary search: np.isin costs ~28 us on a worker's 8 results, this ~4."""
    idx = np.asarray(index, np.int64)
    if not held.size:
        return np.zeros(idx.shape, bool)
    pos = np.searchsorted(held, idx)
    pos[pos == held.size] = 0
    return np.asarray(held[pos] == idx)
