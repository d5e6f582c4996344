"""Pods that cannot start: an image that cannot be pulled, a container that cannot be created, a
pod that cannot be scheduled (a checkpoint claim that stays Pending, a node selector no node
matches), a Deployment that cannot create pods (a quota, Pod Security admission).

None of these restarts a container, so spec.backoffLimit never counts them. Each is read from
what the operator already reads: the job's pods, which it lists while a Deployment is not ready
(by label, as for restarts), and each Deployment's ReplicaFailure condition, in its Deployment
index. Once one has lasted :data:`START_GRACE` seconds (a pull that backs off, a scale-up that
waits for a node, usually resolve within that), an aggregator that cannot start fails the job
(reasons below); worker pods show in the WorkersFailing condition, and the job trains on.

Pure functions of documents already read and an explicit ``now``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Final

from esenas_operator.reasons import (
    AGGREGATOR_CANNOT_START,
    AGGREGATOR_IMAGE_PULL,
    AGGREGATOR_UNSCHEDULABLE,
)
from esenas_operator.status import parse_time

#: Seconds a pod may fail to start before the job says so (docs/operations.md, "Troubleshooting").
START_GRACE: Final = 300
#: Container waiting reasons of a container that cannot start, whose restart count stays put.
CANNOT_START: Final = (
    "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError",
    "RunContainerError",
)
_PULL: Final = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName"})
#: (reason, message, since): a Deployment's ReplicaFailure condition, as its index records it.
Stall = tuple[str, str, str]


def deployment_stall(status: Mapping[str, Any]) -> Stall | None:
    """A Deployment's ReplicaFailure=True condition (its ReplicaSet cannot create pods), if any."""
    for c in status.get("conditions") or ():
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True":
            return str(c.get("reason") or "FailedCreate"), str(c.get("message") or ""), str(c.get("lastTransitionTime") or "")
    return None


def _since(value: Any) -> dt.datetime | None:
    try:
        return parse_time(str(value)) if value else None
    except ValueError:
        return None


def pod_stall(pod: Mapping[str, Any]) -> tuple[str, str, dt.datetime | None] | None:
    """(reason, message, since) of a pod that cannot start: a container waiting in
    :data:`CANNOT_START` (since the pod turned unready), or a pod the scheduler cannot place."""
    status, created = pod.get("status") or {}, (pod.get("metadata") or {}).get("creationTimestamp")
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    for c in (*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())):
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in CANNOT_START:
            ready = conditions.get("Ready") or {}
            since = ready.get("lastTransitionTime") if ready.get("status") == "False" else None
            return str(waiting["reason"]), str(waiting.get("message") or ""), _since(since or status.get("startTime") or created)
    scheduled = conditions.get("PodScheduled") or {}
    if scheduled.get("status") == "False":
        return str(scheduled.get("reason") or "Unschedulable"), str(scheduled.get("message") or ""), _since(scheduled.get("lastTransitionTime") or created)
    return None


def _due(since: dt.datetime | None, now: dt.datetime, grace: float) -> bool:
    return since is not None and (now - since).total_seconds() >= grace


def _first(pods: Iterable[Mapping[str, Any]], stall: Stall | None, now: dt.datetime, grace: float) -> tuple[str, str, bool] | None:
    """(reason, message, is a pod's) of the first failure to start past ``grace``."""
    for pod in pods:
        found = pod_stall(pod)
        if found is not None and _due(found[2], now, grace):
            return found[0], found[1], True
    if stall is not None and _due(_since(stall[2]), now, grace):
        return stall[0], stall[1], False
    return None


def aggregator(pods: Iterable[Mapping[str, Any]], stall: Stall | None, now: dt.datetime, claim: str | None = None,
               grace: float = START_GRACE) -> tuple[str, str] | None:
    """(the job's Failed reason, message) when the aggregator cannot start past ``grace``, else None.
    ``claim``: the job's checkpoint PVC, named when the scheduler blames a claim."""
    found = _first(pods, stall, now, grace)
    if found is None:
        return None
    reason, text, of_pod = found
    if not of_pod:
        return AGGREGATOR_CANNOT_START, _message(f"the aggregator Deployment cannot create its pod: {reason}", text, grace)
    if reason in CANNOT_START:
        return AGGREGATOR_IMAGE_PULL if reason in _PULL else AGGREGATOR_CANNOT_START, _message(f"the aggregator pod cannot start: {reason}", text, grace)
    message = _message(f"the aggregator pod cannot be scheduled: {reason}", text, grace)
    if claim and "persistentvolumeclaim" in text.lower():
        message += f"; its checkpoint claim may be Pending (kubectl describe pvc {claim}: does its storage class exist?)"
    return AGGREGATOR_UNSCHEDULABLE, message


def workers(pods: Iterable[Mapping[str, Any]], stalls: Iterable[tuple[str, Stall | None]], now: dt.datetime,
            grace: float = START_GRACE) -> tuple[str, str] | None:
    """(reason, message) of the WorkersFailing condition when worker pods cannot be scheduled, or a
    worker Deployment (``stalls``: its name and ReplicaFailure) cannot create pods, past ``grace``."""
    listed = list(pods)
    stuck = [found for pod in listed if (found := pod_stall(pod)) is not None and _due(found[2], now, grace)]
    if stuck:
        reason, text, _ = stuck[0]
        return reason, _message(f"{len(stuck)} of the {len(listed)} worker pods listed cannot start: {reason}", text, grace)[:1000]
    for name, stall in stalls:
        if stall is not None and _due(_since(stall[2]), now, grace):
            return stall[0], _message(f"Deployment {name} cannot create pods: {stall[0]}", stall[1], grace)[:1000]
    return None


def _message(head: str, text: str, grace: float) -> str:
    return f"{head}{': ' + text if text else ''} (for more than {grace:g} s)"
