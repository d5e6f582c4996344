"""Drift: a job's children as the operator last applied them, against what its indices see.

A Deployment of a live job deleted by hand, scaled by hand, or one more worker shard than the job
wants, is drift; so is a Service, NetworkPolicy or ConfigMap of the job deleted by hand (the
workers' address, who may reach it, the spec every new pod mounts). The status timer checks it on
every tick from the indices alone (esenas_operator.indices, no API read), and re-applies the job's
children (esenas_operator.converge, as a reconcile does) once the same job showed drift on two
ticks in a row: one tick may see an index a moment behind an apply.
Its Warning Event (reason ``Repaired``) is posted once per drift, not on every tick.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from esenas.spec import Job

from esenas_operator import builders, names, relays
from esenas_operator.decide import Workload

#: The reason of the Event a repair posts.
REPAIRED: Final = "Repaired"


def wanted(job: Job) -> dict[str, int]:
    """The Deployments ``job`` wants, by name, and the replicas of each (all 0 while suspended)."""
    stopped = job.spec.suspend
    out = {names.aggregator(job.name): builders.aggregator_replicas(job)}
    if pods := relays.relay_pods(job):
        out[names.relays(job.name)] = 0 if stopped else pods
    for i, size in enumerate(builders.shard_sizes(job.spec.workers.replicas, job.spec.workers.shard_size)):
        out[names.worker_shard(job.name, i)] = 0 if stopped else size
    return out


def wanted_parts(job: Job) -> frozenset[str]:
    """The job's other children whose loss is drift, as "Kind/name" (the ``parts`` index's words)."""
    servers = [names.aggregator(job.name)] + ([names.relays(job.name)] if relays.relay_pods(job) else [])
    return frozenset({f"ConfigMap/{names.spec_configmap(job.name)}"}
                     | {f"{kind}/{name}" for name in servers for kind in ("Service", "NetworkPolicy")})


def drifted(job: Job, seen: Iterable[Workload], parts: Iterable[str]) -> tuple[str, ...]:
    """How the Deployments ``seen`` and other children ``parts`` ("Kind/name") differ from what
    ``job`` wants, one line each; () when they do not."""
    want, have = wanted(job), {w.name: w for w in seen}
    out = [f"{part} was missing" for part in wanted_parts(job) - set(parts)]
    for name, replicas in want.items():
        w = have.get(name)
        if w is None:
            out.append(f"Deployment/{name} was missing")
        elif w.replicas != replicas:
            out.append(f"Deployment/{name} had {w.replicas} replicas, not {replicas}")
    out += [f"Deployment/{n} was not wanted" for n, w in have.items() if n not in want and w.component in ("worker", "relay")]
    return tuple(sorted(out))


def snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the builders read of a job (its identity and spec), copied: the body of a repair."""
    meta = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid")},
        "spec": copy.deepcopy(dict(body.get("spec") or {})),
    }


@dataclass
class Applied:
    """A job as its children were last applied (by a reconcile or a repair), and what the drift
    checks remember of it."""

    body: Mapping[str, Any]
    job: Job
    generation: int
    #: The drift the last tick saw: repaired if the next tick sees drift too.
    suspect: tuple[str, ...] = ()
    #: The drift last repaired, whose Event was posted: the same drift again posts none.
    repaired: tuple[str, ...] = ()

    def observe(self, seen: Iterable[Workload], parts: Iterable[str], generation: int, refused: int | None) -> tuple[str, ...]:
        """The drift to repair now: seen on this tick and the last. None while an edit of the job
        (``generation``) waits for its reconcile, unless that edit was refused (``refused``)."""
        if generation != self.generation and refused != generation:
            self.suspect = ()
            return ()
        found = drifted(self.job, seen, parts)
        due = found if found and self.suspect else ()
        self.suspect = found
        if not found:
            self.repaired = ()
        return due

    def announce(self, found: tuple[str, ...]) -> bool:
        """After a repair of ``found``: whether its Event is due (not when it repaired the same)."""
        new = found != self.repaired
        self.repaired, self.suspect = found, ()
        return new
