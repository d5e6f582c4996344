"""Apply every child of a job: what a reconcile does, and what a drift repair does again.

One code path for both (esenas_operator.handlers): a dry run of every child, then server-side
apply, then the deletion of worker shards and relays the spec no longer wants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from esenas.spec import Job

from esenas_operator import builders, names, relays
from esenas_operator.kube import Kube
from esenas_operator.settings import Settings

MONITOR_API: Final = "monitoring.coreos.com/v1"


def apply_children(k: Kube, body: Mapping[str, Any], job: Job, settings: Settings) -> tuple[int, list[str]]:
    """Dry-run then apply every child; delete worker shards beyond the wanted count.

    Returns the number of worker shards and the children that changed ('Kind/name', '-Kind/name'
    for a deletion). Raises Refused when the API server refuses a child (in the dry run: nothing
    was written).
    """
    monitor = k.has_group_version(MONITOR_API)
    # The Secret is created once (random, immutable): a reconcile's fresh token and certificates
    # are only used if it does not exist yet (about 2 ms of key generation, no extra request).
    children = [builders.build_token_secret(body, builders.new_token(), builders.new_tls(body)), *builders.build_children(body, job, settings, service_monitor=monitor)]
    changed = k.converge(children)
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
