"""Pods that cannot start (esenas_operator.starting): an aggregator that cannot pull its image or
cannot be scheduled fails the job once the grace has passed; worker Deployments that cannot create
pods show in the WorkersFailing condition while the job goes on."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.fakekube.harness import FakeKube
from tests.integration.operator.opharness import OperatorProcess, job_doc
from tests.integration.operator.test_lifecycle import apply, replicas, status

PODS = "/api/v1/namespaces/default/pods"


def _ago(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod(cluster: FakeKube, job: str, component: str, status: dict[str, Any]) -> None:
    name = f"{job}-{component}-abc"
    cluster.client.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {
        "esenas.dev/job": job, "app.kubernetes.io/component": component}}, "spec": {"containers": [{"name": component, "image": "x"}]}})
    cluster.client.patch(f"{PODS}/{name}/status", {"status": status})


def _warnings(cluster: FakeKube, job: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in cluster.client.list("/api/v1/namespaces/default/events")
            if e["involvedObject"]["name"] == job and e.get("reason") == reason and e["type"] == "Warning"]


def test_an_aggregator_whose_image_cannot_be_pulled_fails_the_job_after_the_grace(cluster: FakeKube, operator: OperatorProcess) -> None:
    apply(cluster, job_doc("pull"), job_doc("fresh"))
    cluster.wait_for(lambda: status(cluster, "pull").get("phase") == "Pending" and status(cluster, "fresh").get("phase") == "Pending")
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}}
    for job, since in (("pull", _ago(400)), ("fresh", _ago(5))):
        _pod(cluster, job, "aggregator", {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": since}],
                                          "containerStatuses": [{"name": "aggregator", "restartCount": 0, "ready": False, "image": "x",
                                                                 "imageID": "", "started": False, "state": waiting}]})
    st = cluster.wait_for(lambda: (s := status(cluster, "pull")).get("phase") == "Failed" and s, timeout=30)
    assert st["reason"] == "AggregatorImagePullFailed", st
    assert st["message"].startswith('the aggregator pod cannot start: ImagePullBackOff: Back-off pulling image "x"'), st["message"]
    (failed,) = [c for c in st["conditions"] if c["type"] == "Failed"]
    assert (failed["status"], failed["reason"], failed["message"]) == ("True", "AggregatorImagePullFailed", st["message"])
    cluster.wait_for(lambda: replicas(cluster, "pull") == {"pull-aggregator": 0, "pull-workers-0": 0})
    (event,) = cluster.wait_for(lambda: _warnings(cluster, "pull", "AggregatorImagePullFailed"))
    assert 'Back-off pulling image "x"' in event["message"]
    # Within the grace, the same wait is a pull in progress: the job stays Pending.
    assert (status(cluster, "fresh")["phase"], status(cluster, "fresh")["reason"]) == ("Pending", "Created")
    assert operator.alive()


def test_an_aggregator_that_cannot_be_scheduled_names_its_claim(cluster: FakeKube, operator: OperatorProcess) -> None:
    apply(cluster, job_doc("claim", aggregator={"checkpoint": {"storageSize": "1Gi", "storageClassName": "nowhere"}}))
    cluster.wait_for(lambda: status(cluster, "claim").get("phase") == "Pending")
    why = "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    _pod(cluster, "claim", "aggregator", {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": why, "lastTransitionTime": _ago(600)}]})
    st = cluster.wait_for(lambda: (s := status(cluster, "claim")).get("phase") == "Failed" and s, timeout=30)
    assert st["reason"] == "AggregatorUnschedulable", st
    assert st["message"].startswith(f"the aggregator pod cannot be scheduled: Unschedulable: {why}"), st["message"]
    assert "kubectl describe pvc claim-checkpoints" in st["message"]
    assert len(cluster.wait_for(lambda: _warnings(cluster, "claim", "AggregatorUnschedulable"))) == 1
    assert operator.alive()


def test_a_worker_deployment_that_cannot_create_pods_shows_as_workers_failing(cluster: FakeKube, operator: OperatorProcess) -> None:
    apply(cluster, job_doc("quota"))
    cluster.wait_for(lambda: status(cluster, "quota").get("phase") == "Pending")
    why = 'pods "quota-workers-0-7d9f" is forbidden: exceeded quota: compute, requested: cpu=1, used: cpu=8, limited: cpu=8'
    cluster.client.patch("/apis/apps/v1/namespaces/default/deployments/quota-workers-0/status", {"status": {"conditions": [
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": why, "lastTransitionTime": _ago(400)}]}})

    def failing() -> dict[str, Any] | None:
        return next((c for c in status(cluster, "quota").get("conditions", []) if c["type"] == "WorkersFailing" and c["status"] == "True"), None)

    cond = cluster.wait_for(failing, timeout=30)
    assert cond["reason"] == "FailedCreate" and cond["message"].startswith(f"Deployment quota-workers-0 cannot create pods: FailedCreate: {why}")
    st = status(cluster, "quota")
    assert (st["phase"], st["reason"]) == ("Pending", "WorkersFailing"), "workers that cannot start do not fail the job"
    assert len(cluster.wait_for(lambda: _warnings(cluster, "quota", "WorkersFailing"))) == 1
    assert operator.alive()
