"""The operator's indices over the children it manages (kopf watches, filtered by its label).

``workloads``: each Deployment as a :class:`~esenas_operator.decide.Workload` (readiness, replicas,
the aggregator's records). ``parts``: each Service, NetworkPolicy and ConfigMap by kind and name, so
that the status timer notices one deleted by hand (drift.py) without an API read. Both are keyed
by (namespace, job). Secrets are not watched: the operator has no read of them by design.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import kopf

from esenas_operator import claims, decide, names, starting, terms

#: What kopf watches for the ``parts`` index: (group, version, plural, kind).
PART_RESOURCES: Final = (
    ("", "v1", "services", "Service"),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    ("", "v1", "configmaps", "ConfigMap"),
)
_KIND: Final = {plural: kind for _, _, plural, kind in PART_RESOURCES}


def workloads(namespace: str | None, name: str, labels: Mapping[str, str], annotations: Mapping[str, str], spec: kopf.Spec,
              status: kopf.Status, **_: Any) -> dict[tuple[str, str], decide.Workload]:
    job = labels.get(names.JOB_LABEL)
    if not job or not namespace:
        return {}
    return {
        (namespace, job): decide.Workload(
            name, labels.get(names.COMPONENT_LABEL, ""), int(spec.get("replicas") or 0), int(status.get("readyReplicas") or 0),
            annotations.get(claims.ANNOTATION), annotations.get(terms.ANNOTATION), starting.deployment_stall(status),
        )
    }


def parts(namespace: str | None, name: str, labels: Mapping[str, str], resource: kopf.Resource, **_: Any) -> dict[tuple[str, str], str]:
    """One child that is not a Deployment, as "Kind/name" (the words of a drift line)."""
    job = labels.get(names.JOB_LABEL)
    if not job or not namespace:
        return {}
    return {(namespace, job): f"{_KIND.get(resource.plural, resource.plural)}/{name}"}


def register(registry: kopf.OperatorRegistry) -> None:
    """Both indices, each watch filtered to the operator's own children."""
    mine = {"app.kubernetes.io/managed-by": names.MANAGER}
    kopf.index("apps", "v1", "deployments", labels=mine, registry=registry)(workloads)
    for group, version, plural, _ in PART_RESOURCES:
        kopf.index(group, version, plural, labels=mine, id="parts", registry=registry)(parts)
