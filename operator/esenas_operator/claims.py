"""The checkpoint volume is made once: an edit of its size or class on a job that ran is refused.

The PVC ``J-checkpoints`` is created (never applied) when the job starts, and never resized or
replaced (esenas.edits.CREATED_ONCE). So an edit of ``spec.aggregator.checkpoint.storageSize`` or
``storageClassName`` on a job that ran would only make the spec lie about the volume: the operator
refuses it as it refuses other edits it cannot apply (Reconciled=False, reason InvalidSpec, and a
Warning), naming the field. Setting or removing ``storageSize`` is refused too: either would move
the aggregator between an emptyDir and a claim, and restart it from iteration 0.

What the job ran with is read from the spec last applied in this process, else from an annotation
on the aggregator Deployment (in the operator's Deployment index: no extra request, and it
outlives a restart of the operator).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Final

from esenas.spec import API_GROUP, Job

from esenas_operator import names
from esenas_operator.decide import Workload

#: On the aggregator Deployment: the checkpoint volume its job asked for, as JSON ({} for an emptyDir).
ANNOTATION: Final = f"{API_GROUP}/checkpoint-volume"
_FIELDS: Final = (("storageSize", "storage_size"), ("storageClassName", "storage_class_name"))


def volume(job: Job) -> dict[str, str]:
    """The checkpoint volume ``job`` asks for: its storageSize and storageClassName, those set."""
    ck = job.spec.aggregator.checkpoint
    return {key: str(value) for key, attr in _FIELDS if (value := getattr(ck, attr, None))}


def annotation(job: Job) -> str:
    """The aggregator Deployment's :data:`ANNOTATION` for ``job``."""
    return json.dumps(volume(job), sort_keys=True, separators=(",", ":"))


def recorded(seen: Iterable[Workload]) -> dict[str, str] | None:
    """The volume the job's aggregator Deployment records; None when unknown (none, or made by an
    operator before the annotation)."""
    for w in seen:
        if w.component == "aggregator" and w.checkpoint is not None:
            try:
                found = json.loads(w.checkpoint)
            except ValueError:
                return None
            return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None
    return None


def refusal(before: Mapping[str, str] | None, job: Job) -> str | None:
    """Why an edit of the checkpoint volume from ``before`` to ``job``'s is refused; None when the
    volume is unchanged or ``before`` is unknown."""
    after = volume(job)
    if before is None or dict(before) == after:
        return None
    old, new = before.get("storageSize"), after.get("storageSize")
    field = "spec.aggregator.checkpoint.storageSize"
    if old is None:
        what = f"{field} cannot be set to {new} on a job that runs on an emptyDir"
    elif new is None:
        what = f"{field} cannot be removed (it is {old}; without it the aggregator would move to an emptyDir and restart from iteration 0)"
    elif old != new:
        what = f"{field} cannot change from {old} to {new}"
    else:
        was, now = (v.get("storageClassName") or "the default class" for v in (before, after))
        what = f"spec.aggregator.checkpoint.storageClassName cannot change from {was} to {now}"
    keep = " and ".join(f"{k} {v}" for k, v in sorted(before.items(), reverse=True)) or "storageSize unset"
    return (f"{what}: the checkpoint volume (PVC {names.checkpoint_claim(job.name)}) is made once, when the job "
            f"starts, and never resized or replaced; keep {keep}, or delete the job and create it again (its "
            "checkpoint goes with it)")
