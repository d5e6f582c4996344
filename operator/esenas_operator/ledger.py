"""Per job, in memory: the spec its children were last applied from, and a lock around applying.

A reconcile records what it applied; the status timer reads it while an edit is refused, checks
the job's children against it (drift.py) and repairs them from it; a reconcile's check of the
checkpoint volume (claims.py) starts from it. After an operator restart the record is empty until
the job's first valid reconcile (kopf's resume handler): until then there are no repairs, and the
checkpoint volume is read from the aggregator Deployment's annotation instead.

The lock keeps a repair and a reconcile of the same job from interleaving their writes (kopf runs
timers beside change handlers): a reconcile waits for a repair; a repair skips a tick while a
reconcile applies.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from esenas.spec import Job

from esenas_operator import claims, drift
from esenas_operator.converge import apply_children
from esenas_operator.decide import Workload
from esenas_operator.kube import Kube
from esenas_operator.settings import Settings

Key = tuple[str, str]


class Ledger:
    def __init__(self) -> None:
        self._applied: dict[Key, drift.Applied] = {}
        self._locks: dict[Key, threading.Lock] = {}

    def _lock(self, key: Key) -> threading.Lock:
        return self._locks.setdefault(key, threading.Lock())

    def job(self, key: Key) -> Job | None:
        """The spec the job's children were last applied from, if this process applied them."""
        applied = self._applied.get(key)
        return applied.job if applied is not None else None

    @contextmanager
    def applying(self, key: Key) -> Iterator[None]:
        """Around a reconcile's apply (record it with :meth:`record` inside)."""
        with self._lock(key):
            yield

    def record(self, key: Key, body: Mapping[str, Any], job: Job, generation: int) -> None:
        self._applied[key] = drift.Applied(drift.snapshot(body), job, generation)

    def volume(self, key: Key, seen: Iterable[Workload]) -> dict[str, str] | None:
        """The checkpoint volume the job's children were applied with (claims.py); None: unknown."""
        job = self.job(key)
        return claims.volume(job) if job is not None else claims.recorded(seen)

    def repair(self, k: Kube, key: Key, seen: Iterable[Workload], parts: Iterable[str], generation: int, refused: int | None,
               settings: Settings) -> tuple[tuple[str, ...], list[str], bool] | None:
        """Re-apply the job's children when they drifted (drift.Applied.observe; ``parts``: its
        other children seen, "Kind/name"): the drift, the children that changed, and whether its
        Event is due; None when nothing was done."""
        applied = self._applied.get(key)
        if applied is None or not (found := applied.observe(seen, parts, generation, refused)):
            return None
        lock = self._lock(key)
        if not lock.acquire(blocking=False):
            return None  # a reconcile applies them right now
        try:
            if self._applied.get(key) is not applied:
                return None  # applied anew since this tick began
            _, changed = apply_children(k, applied.body, applied.job, settings)
        finally:
            lock.release()
        return found, changed, applied.announce(found)

    def forget(self, key: Key) -> None:
        self._applied.pop(key, None)
        self._locks.pop(key, None)
