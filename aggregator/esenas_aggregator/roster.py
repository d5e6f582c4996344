"""Who the aggregator's workers are: every caller, the proven ones (results accepted), the busy
ones and the ones served this iteration. Sizes fair shares and counts the fleet so that made-up
worker ids can neither shrink everyone's share nor inflate ``workersConnected``.
"""

from __future__ import annotations

import time
from typing import Final

#: Longest a worker id may be (it is only counted; this bounds memory).
MAX_WORKER_ID: Final = 253
#: Most worker ids remembered for sizing fair shares: made-up ids cannot grow memory past it.
MAX_SEEN_IDS: Final = 100_000
#: Most unproven worker ids (none of their results accepted yet) counted besides the proven
#: ones when sizing fair shares: a client making up ids cannot shrink everyone's share to one item.
BOOTSTRAP_IDS: Final = 16


class Roster:
    """The workers seen within ``window`` seconds; all times are ``time.monotonic()``."""

    def __init__(self, window: float) -> None:
        self.window = window  # a long-polling worker stays counted
        self._seen: dict[str, float] = {}  # every caller, for sizing fair shares only
        self._proven: dict[str, float] = {}  # workers that returned accepted results, and when
        self._busy: set[str] = set()  # workers whose last pull got items (bounded by _proven)
        self.served: set[str] = set()  # workers that got items of this iteration
        self._started: float | None = None  # when this iteration's items were published
        self._last_first_lease: float | None = None  # when the last worker served got its first lease

    def new_iteration(self, now: float | None = None) -> float | None:
        """A new iteration's items are out. Returns the last one's broadcast: seconds from its
        start until the last worker it served had its first lease (None: it served none)."""
        broadcast = None
        if self._started is not None and self._last_first_lease is not None:
            broadcast = self._last_first_lease - self._started
        self.served = set()
        self._started = time.monotonic() if now is None else now
        self._last_first_lease = None
        return broadcast

    def serve(self, worker_id: str, now: float | None = None) -> None:
        """``worker_id`` got items of this iteration."""
        if worker_id not in self.served:
            self.served.add(worker_id)
            self._last_first_lease = time.monotonic() if now is None else now

    def seen(self, worker_id: str, now: float | None = None) -> None:
        """A call from ``worker_id``: it counts towards fair shares, within bounds (see
        :meth:`share_workers`; not towards the workers connected, which only accepted results
        earn, see :meth:`connected`)."""
        if worker_id in self._seen or len(self._seen) < MAX_SEEN_IDS:
            self._seen[worker_id] = time.monotonic() if now is None else now

    def worked(self, worker_id: str) -> None:
        """Results of ``worker_id`` were accepted."""
        self._proven[worker_id] = time.monotonic()

    def proven(self, worker_id: str) -> bool:
        """Whether results of ``worker_id`` were accepted within the window."""
        t = self._proven.get(worker_id)
        return t is not None and t >= time.monotonic() - self.window

    @property
    def any_proven(self) -> bool:
        return bool(self._proven)

    @property
    def callers(self) -> int:
        """Distinct ids that called within the window (made-up ones included)."""
        return len(self._seen)

    @property
    def any_seen(self) -> bool:
        return bool(self._seen)

    def pulled(self, worker_id: str, got_items: bool) -> None:
        """The last pull of ``worker_id`` got items, or none."""
        if got_items:
            self._busy.add(worker_id)
        else:
            self._busy.discard(worker_id)

    def connected(self, now: float | None = None) -> int:
        """Workers whose results were accepted within the window. Calls and leases alone do not
        count, so made-up worker ids, even ones that pull and hold items, cannot inflate the
        fleet's size; a new worker counts from its first accepted result. Forgets the others
        (bounded memory)."""
        now = time.monotonic() if now is None else now
        cutoff = now - self.window
        for table in (self._seen, self._proven):
            for w in [w for w, t in table.items() if t < cutoff]:
                del table[w]
        self._busy &= self._proven.keys()
        return len(self._proven)

    def utilization(self) -> float:
        """Busy workers (their last pull got items) over connected ones; 0 with none connected."""
        connected = self.connected()
        return len(self._busy) / connected if connected else 0.0

    def share_workers(self) -> int:
        """The workers fair shares are spread over: the proven ones plus at most
        :data:`BOOTSTRAP_IDS` others; before any worker is proven (a job's start), every caller.
        O(1): it runs on every pull."""
        proven = len(self._proven)
        unproven = max(0, len(self._seen) - proven)
        return max(1, proven + (min(unproven, BOOTSTRAP_IDS) if proven else unproven))
