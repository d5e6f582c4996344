"""A job deleted and created again under the same name: its token Secret and checkpoint claim
(created once, never read back) must be its own, not the earlier job's awaiting the garbage
collector. The fake API server collects at once, so the earlier job's leftovers are made by hand:
owned by a stand-in that the test deletes when the collector would have caught up."""

from __future__ import annotations

from typing import Any

from tests.fakekube.harness import FakeKube
from tests.integration.operator.opharness import OperatorProcess, job_doc
from tests.integration.operator.test_lifecycle import apply, children, job, replicas, status

NS = "/api/v1/namespaces/default"


def _owners(obj: dict[str, Any]) -> list[str]:
    return [r["uid"] for r in obj["metadata"].get("ownerReferences") or ()]


def test_a_job_created_again_waits_for_the_earlier_jobs_secret_and_claim_to_go(cluster: FakeKube, operator: OperatorProcess) -> None:
    # The earlier "x": gone, but its Secret and claim still wait for the garbage collector.
    earlier = cluster.client.create(f"{NS}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "earlier-x"}})
    ref = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "name": "x", "uid": earlier["metadata"]["uid"],
           "controller": True, "blockOwnerDeletion": True}
    labels = {"esenas.dev/job": "x"}
    cluster.client.create(f"{NS}/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "x-token", "labels": labels, "ownerReferences": [ref]}, "stringData": {"token": "earlier"}})
    cluster.client.create(f"{NS}/persistentvolumeclaims", {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {
        "name": "x-checkpoints", "labels": labels, "ownerReferences": [ref]},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    apply(cluster, job_doc("x", aggregator={"checkpoint": {"storageSize": "1Gi"}}))
    uid = job(cluster, "x")["metadata"]["uid"]

    def reconciled() -> dict[str, Any] | None:
        return next((c for c in status(cluster, "x").get("conditions") or () if c["type"] == "Reconciled"), None)

    cond = cluster.wait_for(lambda: (c := reconciled()) is not None and c["status"] == "False" and c, timeout=30)
    assert cond["reason"] == "StaleChild" and "x-token" in cond["message"] and "garbage collector" in cond["message"], cond
    # Nothing runs on the earlier job's token or checkpoint meanwhile.
    assert replicas(cluster, "x") == {}
    # The collector catches up: the job's own Secret and claim are created, then its fleet.
    cluster.client.delete(f"{NS}/configmaps/earlier-x")
    cluster.wait_for(lambda: replicas(cluster, "x") == {"x-aggregator": 1, "x-workers-0": 2}, timeout=30)
    made = cluster.wait_for(lambda: (c := children(cluster, "x")).get(("Secret", "x-token")) and c.get(("PersistentVolumeClaim", "x-checkpoints")) and c)
    assert _owners(made[("Secret", "x-token")]) == [uid] and _owners(made[("PersistentVolumeClaim", "x-checkpoints")]) == [uid]
    cluster.wait_for(lambda: (c := reconciled()) is not None and c["status"] == "True")
    assert status(cluster, "x")["phase"] == "Pending"

    # Deleted and created again for real (this server collects at once): the new job's own children.
    cluster.kubectl("delete", "esj/x", "--timeout=30s")
    apply(cluster, job_doc("x", aggregator={"checkpoint": {"storageSize": "1Gi"}}))
    again = job(cluster, "x")["metadata"]["uid"]
    made = cluster.wait_for(lambda: (c := children(cluster, "x")).get(("Secret", "x-token")) and c.get(("PersistentVolumeClaim", "x-checkpoints"))
                            and len(c) >= 7 and c)
    assert {k: _owners(v) for k, v in made.items()} == {k: [again] for k in made}
    assert operator.alive()
