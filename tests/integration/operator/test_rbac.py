"""The API requests the running operator makes are exactly what operator/rbac-rules.yaml grants (least privilege).

The fake API server counts requests by verb and resource. This test makes its own few requests
through a client (not kubectl), so everything else the server saw came from the operator.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from tests.fakekube.harness import FakeKube
from tests.integration.operator.opharness import (
    CRD_FILE,
    JOBS,
    REPO,
    OperatorProcess,
    StandInAggregator,
    env_without_proxy,
    job_doc,
    running_status,
)

SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor", "listKind": "ServiceMonitorList"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}


USER_MONITOR = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "ServiceMonitor",
    "metadata": {"name": "rbac-mine", "namespace": "default",
                 "labels": {"esenas.dev/job": "rbac", "app.kubernetes.io/component": "aggregator"}},
    "spec": {"selector": {"matchLabels": {"esenas.dev/job": "rbac"}}, "endpoints": [{"port": "http"}]},
}


#: Granted for an admission plugin, not for a request: OwnerReferencesPermissionEnforcement lets an
#: object set blockOwnerDeletion on its ownerReference to a job only for whoever may update the
#: job's finalizers (every child of a job does; see test_children_that_block_deletion_are_granted).
ADMISSION_ONLY = {("update", "esenas.dev/esenasjobs/finalizers")}


def granted() -> set[tuple[str, str]]:
    rules = yaml.safe_load((REPO / "operator" / "rbac-rules.yaml").read_text())
    out = set()
    for rule in [*rules["namespaced"], *rules["cluster"]]:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((verb, f"{group}/{res}" if group else res))
    return out


def _count(kube: FakeKube, resource: str) -> int:
    return int(kube.client.stats()["objects"].get(resource, 0))


def test_operator_requests_are_all_granted(fakekube: FakeKube, tmp_path: Path) -> None:
    crd = yaml.safe_load(CRD_FILE.read_text())
    own: Counter[tuple[str, str]] = Counter()
    fakekube.client.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    fakekube.client.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", SERVICE_MONITOR_CRD)
    own[("create", "apiextensions.k8s.io/customresourcedefinitions")] += 2
    standin = StandInAggregator()
    # A namespace pattern as well as a name, as `watch.namespaces` may hold: kopf then lists and
    # watches namespaces, the one path of the granted rules a plain namespace never takes.
    op = OperatorProcess(tmp_path, {**env_without_proxy(), "KUBECONFIG": str(fakekube.kubeconfig)}, standin.url_template,
                         interval=0.5, args=["--namespace", "default", "--namespace", "team-*"])
    op.start()
    try:
        jobs = JOBS.format(ns="default")
        fakekube.client.create(jobs, job_doc("rbac", replicas=3, ttlSecondsAfterFinished=0, aggregator={"checkpoint": {"storageSize": "1Gi"}},
                                             relays={"replicas": 1}))
        own[("create", "esenas.dev/esenasjobs")] += 1
        # The aggregator, one worker shard and the relays.
        fakekube.wait_for(lambda: _count(fakekube, "monitoring.coreos.com/servicemonitors") == 1 and _count(fakekube, "apps/deployments") == 3)
        # Relays back to 0: their Deployment, Service and NetworkPolicy are deleted.
        fakekube.client.patch(f"{jobs}/rbac", {"spec": {"relays": {"replicas": 0}}})
        own[("patch", "esenas.dev/esenasjobs")] += 1
        fakekube.wait_for(lambda: _count(fakekube, "apps/deployments") == 2 and _count(fakekube, "networking.k8s.io/networkpolicies") == 1)
        # A user's own ServiceMonitor for the job: the job's labels, not the operator's managed-by.
        monitors = "/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors"
        fakekube.client.create(monitors, USER_MONITOR)
        own[("create", "monitoring.coreos.com/servicemonitors")] += 1
        # The chart turns jobServiceMonitor.enabled off: the restarted operator deletes the
        # ServiceMonitor it made for the running job, and leaves the user's.
        op.stop()
        op.env["ESENAS_JOB_SERVICEMONITOR_ENABLED"] = "false"
        op.start()
        fakekube.wait_for(lambda: _count(fakekube, "monitoring.coreos.com/servicemonitors") == 1)
        assert fakekube.client.get(f"{monitors}/rbac-mine")["metadata"]["name"] == "rbac-mine"
        own[("get", "monitoring.coreos.com/servicemonitors")] += 1
        fakekube.client.patch(f"{jobs}/rbac/scale", {"spec": {"replicas": 1500}})
        own[("patch", "esenas.dev/esenasjobs/scale")] += 1
        fakekube.wait_for(lambda: _count(fakekube, "apps/deployments") == 3)
        fakekube.client.patch(f"{jobs}/rbac/scale", {"spec": {"replicas": 2}})
        own[("patch", "esenas.dev/esenasjobs/scale")] += 1
        fakekube.wait_for(lambda: _count(fakekube, "apps/deployments") == 2)
        standin.finish("default", "rbac", {"weights": [1.0]}, {"job": "rbac", "iterations": 3}, [])
        standin.statuses[("default", "rbac")] = running_status(phase="Succeeded", done=True)
        # Succeeded, result written, then deleted at once (ttl 0) with all children.
        fakekube.wait_for(lambda: _count(fakekube, "esenas.dev/esenasjobs") == 0, timeout=20)
        fakekube.wait_for(lambda: _count(fakekube, "apps/deployments") == 0)
    finally:
        alive = op.alive()
        op.stop()
        standin.close()
    assert alive, op.log()[-3000:]
    seen = Counter({(verb, res): n for verb, by_res in fakekube.client.stats()["requests"].items() for res, n in by_res.items()})
    operator_made = {key for key, n in seen.items() if n > own.get(key, 0)}
    # Children converge by server-side apply (PATCH, authorized as patch even when it creates).
    assert ("patch", "monitoring.coreos.com/servicemonitors") in operator_made
    assert ("deletecollection", "monitoring.coreos.com/servicemonitors") in operator_made
    assert ("patch", "apps/deployments") in operator_made
    assert ("delete", "esenas.dev/esenasjobs") in operator_made
    assert operator_made - granted() == set(), f"requests not granted by operator/rbac-rules.yaml: {operator_made - granted()}"
    # Least privilege: every granted verb is one the operator used in this run (apply needs only
    # patch, so no child kind is read or POSTed but the Secret and the claim), or one an admission
    # plugin checks on those requests.
    assert granted() - operator_made == ADMISSION_ONLY, f"granted but never used: {granted() - operator_made - ADMISSION_ONLY}"


def test_children_that_block_deletion_are_granted(fakekube: FakeKube, tmp_path: Path) -> None:
    """Children block their job's deletion (blockOwnerDeletion), which OwnerReferencesPermissionEnforcement
    (OpenShift) admits only for a user who may update esenasjobs/finalizers: the operator may, and no more."""
    fakekube.client.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", yaml.safe_load(CRD_FILE.read_text()))
    standin = StandInAggregator()
    op = OperatorProcess(tmp_path, {**env_without_proxy(), "KUBECONFIG": str(fakekube.kubeconfig)}, standin.url_template)
    op.start()
    try:
        fakekube.client.create(JOBS.format(ns="default"), job_doc("owned", aggregator={"checkpoint": {"storageSize": "1Gi"}}))
        kinds = ("/apis/apps/v1/namespaces/default/deployments", "/api/v1/namespaces/default/services",
                 "/api/v1/namespaces/default/configmaps", "/api/v1/namespaces/default/secrets",
                 "/api/v1/namespaces/default/persistentvolumeclaims", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies")
        found = fakekube.wait_for(lambda: (objs := [o for path in kinds for o in fakekube.client.list(path, labelSelector="esenas.dev/job=owned")])
                                  and len({o["kind"] for o in objs}) == len(kinds) and objs)
    finally:
        op.stop()
        standin.close()
    assert {ref.get("blockOwnerDeletion") for o in found for ref in o["metadata"]["ownerReferences"]} == {True}
    assert granted() >= ADMISSION_ONLY
    assert [v for v, res in granted() if res.endswith("/finalizers")] == ["update"], "update only: kopf patches the finalizer list on the job itself"
