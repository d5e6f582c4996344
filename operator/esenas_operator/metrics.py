"""The operator's own Prometheus metrics (names in docs/contracts.md); one series per job at most."""

from __future__ import annotations

import contextlib
import threading
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from esenas_operator.crd import PHASES

REGISTRY: Final = CollectorRegistry()
RECONCILES: Final = Counter(
    "esenas_operator_reconciles", "Reconciles of ESENASJobs (create, update, resume).", registry=REGISTRY
)
ERRORS: Final = Counter(
    "esenas_operator_reconcile_errors", "Reconciles that failed (invalid spec or API error).", registry=REGISTRY
)
REPAIRS: Final = Counter(
    "esenas_operator_repairs",
    "Re-applies of a job's children after drift: one deleted or scaled by hand (drift.py).",
    registry=REGISTRY,
)
JOBS: Final = Gauge("esenas_operator_jobs", "ESENASJobs by phase.", ["phase"], registry=REGISTRY)
WORKERS: Final = Gauge(
    "esenas_operator_job_workers",
    "Worker pods of a job: desired (spec) and ready (over all shards).",
    ["esenas_namespace", "esenas_job", "state"],
    registry=REGISTRY,
)

_lock = threading.Lock()
_phases: dict[tuple[str, str], str] = {}


def observe_job(namespace: str, name: str, phase: str | None, desired: int | None = None, ready: int | None = None) -> None:
    """Record a job's phase and worker counts (phase None: forget the job)."""
    with _lock:
        if phase is None:
            _phases.pop((namespace, name), None)
            for state in ("desired", "ready"):
                with contextlib.suppress(KeyError):
                    WORKERS.remove(namespace, name, state)
        else:
            _phases[(namespace, name)] = phase
        counts = {p: 0 for p in PHASES}
        for p in _phases.values():
            counts[p] = counts.get(p, 0) + 1
        for p, n in counts.items():
            JOBS.labels(phase=p).set(n)
    if phase is not None and desired is not None:
        WORKERS.labels(namespace, name, "desired").set(desired)
    if phase is not None and ready is not None:
        WORKERS.labels(namespace, name, "ready").set(ready)


_served: set[tuple[str, int]] = set()


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Start /metrics once: kopf runs the startup handler again when main.py restarts it after an error."""
    with _lock:
        if (host, port) not in _served:
            start_http_server(port, addr=host, registry=REGISTRY)
            _served.add((host, port))
