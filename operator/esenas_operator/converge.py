"""Apply every child of a job: what a reconcile does, and what a drift repair does again.

One code path for both (esenas_operator.handlers): a dry run of every child, then server-side
apply, then the deletion of worker shards and relays the spec no longer wants.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, Final

from esenas.spec import Job

from esenas_operator import builders, names, relays
from esenas_operator.kube import CREATE_ONLY, Kube
from esenas_operator.settings import Settings

MONITOR_API: Final = "monitoring.coreos.com/v1"


def apply_children(k: Kube, body: Mapping[str, Any], job: Job, settings: Settings, *, fresh: bool = False) -> tuple[int, list[str]]:
    """Dry-run then apply every child; delete worker shards beyond the wanted count.

    Returns the number of worker shards and the children that changed ('Kind/name', '-Kind/name'
    for a deletion). Raises Refused when the API server refuses a child (in the dry run: nothing
    was written), and Stale when ``fresh`` (the job's children were never applied) and its token
    Secret or checkpoint claim exists but is not its own (see :func:`_owned`).
    """
    monitor = k.has_group_version(MONITOR_API)
    # The Secret is created once (random, immutable): a reconcile's fresh token and certificates
    # are only used if it does not exist yet (about 2 ms of key generation, no extra request).
    children = [*builders.build_children(body, job, settings, service_monitor=monitor), builders.build_token_secret(body, builders.new_token(), builders.new_tls(body))]
    # The create-only children go last, after the Deployments (a stable sort keeps the others'
    # order): see _owned. Their pods wait a moment for them (the kubelet retries a Secret volume,
    # the scheduler a claim).
    children.sort(key=lambda o: o["kind"] in CREATE_ONLY)
    changed = k.converge(children, owned=partial(_owned, k, body) if fresh else None)
    if monitor and not any(o["kind"] == "ServiceMonitor" for o in children):
        # jobServiceMonitor.enabled turned off: the ServiceMonitor an earlier operator made goes too
        sm = names.monitor_selector_string(job.name)
        changed += [f"-ServiceMonitor/{n}" for n in k.delete_collection(MONITOR_API, "ServiceMonitor", job.namespace, sm)]
    wanted = {o["metadata"]["name"] for o in children if o["kind"] == "Deployment"}
    for d in k.list("apps/v1", "Deployment", job.namespace, names.job_selector_string(job.name)):
        name, component = d["metadata"]["name"], d["metadata"].get("labels", {}).get(names.COMPONENT_LABEL)
        if name in wanted or component not in ("worker", "relay"):
            continue
        # Surplus worker shards; the relay tier once relays.replicas is 0 or removed (its
        # Deployment last, so a reconcile cut short finds it and finishes the job next time).
        kinds = relays.KINDS[::-1] if component == "relay" else (("apps/v1", "Deployment"),)
        changed += [f"-{kind}/{name}" for api, kind in kinds if k.delete(api, kind, job.namespace, name)]
    return len(builders.shard_sizes(job.spec.workers.replicas, job.spec.workers.shard_size)), changed


def _owned(k: Kube, body: Mapping[str, Any]) -> bool:
    """Whether the token Secret or checkpoint claim that exists is the job's own, for a job whose
    children were never applied (a create answered 409 AlreadyExists).

    Deleted and created again under the same name (``kubectl delete esj x && kubectl apply -f
    x.yaml``), a job finds the earlier job's Secret and claim until the garbage collector removes
    them; taking them as its own, its pods later lose them (mount failures until an edit), and its
    aggregator would resume the earlier job's checkpoint. The operator cannot read them to check
    their ownerReferences (it has no read of Secrets by design, and the create answers 409 without
    the object), and renaming them per uid would break their documented names (J-token,
    J-checkpoints) and the jobs that run on them. Instead: they are created after the job's
    Deployments, so one that exists is the job's own exactly when a Deployment of the job's uid
    exists (a reconcile that created them, cut short before the status said so); no Deployment of
    its uid, and they are another's. One list, by label, of what the operator may already list.
    """
    uid = body["metadata"].get("uid")
    deployments = k.list("apps/v1", "Deployment", body["metadata"]["namespace"], names.job_selector_string(body["metadata"]["name"]))
    return any(uid == ref.get("uid") for d in deployments for ref in d["metadata"].get("ownerReferences") or ())
