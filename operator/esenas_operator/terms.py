"""What the status timer enforces of the spec a job's fleet runs, and how it outlives a restart.

The timer needs four terms of the spec: suspend, spec.workers.replicas, backoffLimit and
stopping.deadlineSeconds. Normally they are the job's own spec's. While an edit stands refused
they are the spec last applied: the ledger's (ledger.py) in the process that applied it. After an
operator restart the ledger is empty, and the job's own spec is either one the parser refuses
(over 96 KiB, say) or one the API server's dry run refused: neither is what runs. So the
operator records the terms where it can read them back without a request or a new permission
(it has no read of its own ConfigMaps, and none of Secrets by design):

- suspend, backoffLimit and deadlineSeconds in the annotation :data:`ANNOTATION` of the aggregator
  Deployment, which the operator's Deployment index sees (as the checkpoint volume's, claims.py);
- the replicas in ``status.workers.desired``, which the operator writes from the applied spec and
  nothing else writes. They stay out of the annotation, so scaling (kubectl scale, an HPA) never
  touches the aggregator Deployment.

Drift repairs still need the whole applied spec: after a restart they wait for the job's first
applied reconcile, as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from esenas.spec import API_GROUP, Job

#: On the aggregator Deployment: the applied spec's suspend, backoffLimit and deadlineSeconds, as JSON.
ANNOTATION: Final = f"{API_GROUP}/applied-terms"


@dataclass(frozen=True)
class Terms:
    """The terms of a spec the status timer enforces."""

    suspend: bool
    replicas: int
    backoff_limit: int
    deadline_seconds: int | None


def of(job: Job) -> Terms:
    return Terms(job.spec.suspend, job.spec.workers.replicas, job.spec.backoff_limit, job.spec.stopping.deadline_seconds)


def annotation(job: Job) -> str:
    """The aggregator Deployment's :data:`ANNOTATION` for ``job``."""
    t = of(job)
    return json.dumps({"backoffLimit": t.backoff_limit, "deadlineSeconds": t.deadline_seconds, "suspend": t.suspend},
                      sort_keys=True, separators=(",", ":"))


def recorded(text: str | None, status: Mapping[str, Any]) -> Terms | None:
    """The applied terms from the aggregator's annotation ``text`` and the job's ``status``; None
    when unknown (no annotation: a Deployment of an older operator, or none yet)."""
    try:
        found = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    deadline = found.get("deadlineSeconds")
    workers = status.get("workers") or {}
    try:
        return Terms(bool(found.get("suspend")), int(workers.get("desired") or 0), int(found["backoffLimit"]),
                     None if deadline is None else int(deadline))
    except (KeyError, TypeError, ValueError):
        return None


def running(own: Terms | None, refused: bool, applied: Terms | None) -> Terms | None:
    """The terms the timer enforces: the applied ones while an edit stands ``refused`` (or when the
    job's ``own`` spec is invalid), else the job's own; None when neither is known."""
    if refused and applied is not None:
        return applied
    return own if own is not None else applied
