"""Object storage with one global resourceVersion counter, a bounded event history (for
watch resumption and 410 Gone) and live fan-out to watchers."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # (group, plural)
Obj = dict[str, Any]
Slot = tuple[Key, str, str]  # (resource key, namespace, name)


def now() -> str:
    """A metav1.Time string (second precision, UTC), as the real server writes them."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    """One committed change: ADDED, MODIFIED or DELETED, with the previous state if any."""

    rv: int
    type: str
    key: Key
    obj: Obj
    old: Obj | None


@dataclass(eq=False)
class Watcher:
    """A live watch on one resource; the HTTP handler drains `queue`."""

    key: Key
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)


class Store:
    """All objects, keyed by (group, plural) then (namespace, name)."""

    def __init__(self, history: int = 10_000) -> None:
        self.rv = 1
        self.objects: dict[Key, dict[tuple[str, str], Obj]] = {}
        self.history: deque[Event] = deque()
        self.history_limit = history
        self.compacted = 0  # events with rv <= this are no longer replayable
        self.watchers: set[Watcher] = set()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.writes: Counter[tuple[str, str]] = Counter()
        # Indexes for the garbage collector: uid -> where, owner uid -> dependents.
        self.by_uid: dict[str, Slot] = {}
        self.owned: dict[str, set[Slot]] = {}

    def get(self, key: Key, ns: str, name: str) -> Obj | None:
        return self.objects.get(key, {}).get((ns, name))

    def items(self, key: Key, ns: str | None = None) -> list[Obj]:
        """Objects of one resource, in one namespace or all, sorted by namespace/name."""
        bucket = self.objects.get(key, {})
        keys = sorted(k for k in bucket if ns is None or k[0] == ns)
        return [bucket[k] for k in keys]

    def all_items(self) -> list[tuple[Key, Obj]]:
        return [(key, obj) for key, bucket in self.objects.items() for obj in bucket.values()]

    def commit(self, key: Key, etype: str, obj: Obj, old: Obj | None, verb: str = "",
               resource: str = "") -> Obj:
        """Store (or drop, for DELETED) `obj` under a new resourceVersion and notify watchers;
        `verb`/`resource` name the write in the stats ("gc" for the garbage collector)."""
        if verb and verb != "init":
            self.writes[(verb, resource)] += 1
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        meta = obj["metadata"]
        slot = (meta.get("namespace", ""), meta["name"])
        self._unindex(key, self.objects.get(key, {}).get(slot))
        if etype == "DELETED":
            self.objects.get(key, {}).pop(slot, None)
        else:
            self.objects.setdefault(key, {})[slot] = obj
            self._index(key, obj)
        event = Event(self.rv, etype, key, obj, old)
        self.history.append(event)
        while len(self.history) > self.history_limit:
            self.compacted = self.history.popleft().rv
        for watcher in self.watchers:
            if watcher.key == key:
                watcher.queue.put_nowait(event)
        return copy.deepcopy(obj)

    def _index(self, key: Key, obj: Obj) -> None:
        meta = obj["metadata"]
        where = (key, meta.get("namespace", ""), meta["name"])
        self.by_uid[meta["uid"]] = where
        for ref in meta.get("ownerReferences") or []:
            self.owned.setdefault(str(ref.get("uid")), set()).add(where)

    def _unindex(self, key: Key, obj: Obj | None) -> None:
        if obj is None:
            return
        meta = obj["metadata"]
        where = (key, meta.get("namespace", ""), meta["name"])
        self.by_uid.pop(meta["uid"], None)
        for ref in meta.get("ownerReferences") or []:
            deps = self.owned.get(str(ref.get("uid")))
            if deps is not None:
                deps.discard(where)
                if not deps:
                    del self.owned[str(ref.get("uid"))]

    def by_id(self, uid: str) -> tuple[Key, Obj] | None:
        """The object with this uid, if it exists."""
        where = self.by_uid.get(uid)
        if where is None:
            return None
        obj = self.get(*where)
        return None if obj is None else (where[0], obj)

    def dependents(self, uid: str) -> list[tuple[Key, Obj]]:
        """Objects with an ownerReference to `uid`, in a stable order."""
        out = []
        for key, ns, name in sorted(self.owned.get(uid, ())):
            obj = self.get(key, ns, name)
            if obj is not None:
                out.append((key, obj))
        return out

    def compact(self) -> None:
        """Forget all history, so any older resourceVersion gets 410 Gone (for tests)."""
        self.history.clear()
        self.compacted = self.rv

    def since(self, key: Key, rv: int) -> list[Event] | None:
        """Events of `key` strictly after `rv`, or None when history no longer reaches it."""
        if rv < self.compacted:
            return None
        return [e for e in self.history if e.rv > rv and e.key == key]

    def subscribe(self, key: Key) -> Watcher:
        watcher = Watcher(key)
        self.watchers.add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)

    def drop_resource(self, key: Key) -> None:
        """Forget a resource whose CRD is gone, and end its watches as the real server does."""
        for obj in self.objects.pop(key, {}).values():
            self._unindex(key, obj)
        for watcher in self.watchers:
            if watcher.key == key:
                watcher.queue.put_nowait(Event(self.rv, "CLOSE", key, {}, None))

    def stats(self) -> dict[str, Any]:
        """Request and write counts per (verb, resource), for benchmarks."""

        def nest(counter: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for (verb, res), n in sorted(counter.items()):
                out.setdefault(verb, {})[res] = n
            return out

        return {
            "requests": nest(self.requests),
            "writes": nest(self.writes),
            "totals": {"requests": sum(self.requests.values()),
                       "writes": sum(self.writes.values())},
            "resourceVersion": str(self.rv),
            "objects": {f"{g}/{p}" if g else p: len(b) for (g, p), b in self.objects.items()},
        }
