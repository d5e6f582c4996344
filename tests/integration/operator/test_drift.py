"""Children deleted or scaled by hand are put back; an edit of the checkpoint volume is refused.

The real operator process against the fake API server, driven by the real kubectl.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakekube.harness import ApiStatusError, FakeKube
from tests.integration.operator.opharness import (
    OperatorProcess,
    StandInAggregator,
    job_doc,
    running_status,
)
from tests.integration.operator.test_lifecycle import apply, children, job, replicas, status

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def _events(cluster: FakeKube, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in cluster.client.list("/api/v1/namespaces/default/events")
            if e["involvedObject"]["name"] == name and e.get("reason") == reason]


def _condition(cluster: FakeKube, name: str, type_: str) -> dict[str, Any]:
    return next((c for c in status(cluster, name).get("conditions") or () if c["type"] == type_), {})


def _running(cluster: FakeKube, standin: StandInAggregator, name: str) -> None:
    """Job ``name`` with 2 workers, applied and Running (its stand-in aggregator says so)."""
    apply(cluster, job_doc(name, replicas=2))
    cluster.wait_for(lambda: replicas(cluster, name) == {f"{name}-aggregator": 1, f"{name}-workers-0": 2})
    standin.statuses[("default", name)] = running_status()
    cluster.wait_for(lambda: status(cluster, name).get("phase") == "Running")


def test_children_deleted_or_scaled_by_hand_are_put_back_with_one_event(
        cluster: FakeKube, operator: OperatorProcess, standin: StandInAggregator) -> None:
    _running(cluster, standin, "d")
    expected = set(children(cluster, "d"))
    cluster.client.delete(f"{DEPLOYMENTS}/d-aggregator")
    cluster.client.delete("/api/v1/namespaces/default/services/d-aggregator")
    cluster.kubectl("scale", "deploy/d-workers-0", "--replicas=7")
    # A worker shard the job does not want (a leftover, or made by hand with the job's labels).
    extra = children(cluster, "d")[("Deployment", "d-workers-0")]
    extra = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {**extra["spec"], "replicas": 1},
             "metadata": {"name": "d-workers-5", "labels": extra["metadata"]["labels"]}}
    cluster.client.create(DEPLOYMENTS, extra)

    cluster.wait_for(lambda: replicas(cluster, "d") == {"d-aggregator": 1, "d-workers-0": 2}, timeout=20)
    cluster.wait_for(lambda: set(children(cluster, "d")) == expected)
    (event,) = cluster.wait_for(lambda: _events(cluster, "d", "Repaired"))
    assert event["type"] == "Warning"
    for line in ("Deployment/d-aggregator was missing", "Deployment/d-workers-0 had 7 replicas, not 2",
                 "Deployment/d-workers-5 was not wanted", "Service/d-aggregator"):
        assert line in event["message"], event["message"]
    assert status(cluster, "d")["phase"] == "Running"
    # Nothing drifted since: no more Events, however many ticks pass (the interval is 1 s).
    time.sleep(4)
    assert len(_events(cluster, "d", "Repaired")) == 1
    assert replicas(cluster, "d") == {"d-aggregator": 1, "d-workers-0": 2}

    # A suspended job wants no pods: a hand scale-up of it is undone too.
    cluster.kubectl("patch", "esj/d", "--type=merge", "-p", json.dumps({"spec": {"suspend": True}}))
    cluster.wait_for(lambda: replicas(cluster, "d") == {"d-aggregator": 0, "d-workers-0": 0})
    cluster.wait_for(lambda: status(cluster, "d").get("phase") == "Suspended")
    cluster.kubectl("scale", "deploy/d-workers-0", "--replicas=3")
    cluster.wait_for(lambda: len(_events(cluster, "d", "Repaired")) == 2, timeout=20)
    assert replicas(cluster, "d") == {"d-aggregator": 0, "d-workers-0": 0}
    assert operator.alive()


def test_a_service_network_policy_or_config_map_deleted_alone_is_put_back(
        cluster: FakeKube, operator: OperatorProcess, standin: StandInAggregator) -> None:
    _running(cluster, standin, "s")
    expected = children(cluster, "s")
    lost = {("Service", "s-aggregator"): "/api/v1/namespaces/default/services/s-aggregator",
            ("NetworkPolicy", "s-aggregator"): "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/s-aggregator",
            ("ConfigMap", "s-spec"): "/api/v1/namespaces/default/configmaps/s-spec"}
    for path in lost.values():
        cluster.client.delete(path)
    assert not set(lost) & set(children(cluster, "s"))

    cluster.wait_for(lambda: set(children(cluster, "s")) == set(expected), timeout=20)
    back = children(cluster, "s")
    assert back[("ConfigMap", "s-spec")]["data"] == expected[("ConfigMap", "s-spec")]["data"]
    assert back[("NetworkPolicy", "s-aggregator")]["spec"] == expected[("NetworkPolicy", "s-aggregator")]["spec"]
    for field in ("selector", "ports"):  # a new Service: the API server gives it a new cluster IP
        assert back[("Service", "s-aggregator")]["spec"][field] == expected[("Service", "s-aggregator")]["spec"][field]
    for key in lost:  # the watches only index names: kopf writes nothing on what it watches
        assert "kopf" not in json.dumps(back[key]["metadata"]), back[key]["metadata"]
    (event,) = cluster.wait_for(lambda: _events(cluster, "s", "Repaired"))
    assert "esenas_operator_repairs_total 1.0" in operator.metrics()
    for kind, name in lost:
        assert f"{kind}/{name} was missing" in event["message"], event["message"]
    assert "Deployment/" not in event["message"].split(":")[0], "the Deployments did not drift"
    time.sleep(4)
    assert len(_events(cluster, "s", "Repaired")) == 1
    assert status(cluster, "s")["phase"] == "Running" and operator.alive()


def test_a_finished_job_is_not_repaired(cluster: FakeKube, operator: OperatorProcess, standin: StandInAggregator) -> None:
    standin.finish("default", "fin", {"weights": [1.0]}, {"job": "fin", "iterations": 2}, [])
    standin.statuses[("default", "fin")] = running_status(iteration=2, phase="Succeeded", done=True, reason="maxIterations")
    apply(cluster, job_doc("fin", replicas=2))
    cluster.wait_for(lambda: status(cluster, "fin").get("phase") == "Succeeded", timeout=15)
    cluster.wait_for(lambda: replicas(cluster, "fin") == {"fin-aggregator": 0, "fin-workers-0": 0})
    cluster.client.delete(f"{DEPLOYMENTS}/fin-aggregator")
    time.sleep(4)
    assert replicas(cluster, "fin") == {"fin-workers-0": 0}
    assert _events(cluster, "fin", "Repaired") == []


def _refused(cluster: FakeKube, name: str) -> dict[str, Any]:
    st = status(cluster, name)
    return st if st.get("reason") == "InvalidSpec" else {}


def test_an_edit_of_the_checkpoint_volume_is_refused_and_says_why(cluster: FakeKube, operator: OperatorProcess) -> None:
    apply(cluster, job_doc("p", replicas=2, aggregator={"checkpoint": {"storageSize": "1Gi"}}))
    claim = ("PersistentVolumeClaim", "p-checkpoints")
    cluster.wait_for(lambda: claim in children(cluster, "p") and replicas(cluster, "p") == {"p-aggregator": 1, "p-workers-0": 2})
    cluster.wait_for(lambda: status(cluster, "p").get("phase") == "Pending")
    cluster.kubectl("patch", "esj/p", "--type=merge", "-p",
                    json.dumps({"spec": {"aggregator": {"checkpoint": {"storageSize": "5Gi", "storageClassName": "fast"}}}}))
    st = cluster.wait_for(lambda: _refused(cluster, "p"), timeout=20)
    assert st["phase"] == "Pending" and st["observedGeneration"] == 1
    message = st["message"]
    assert "the edit of generation 2 was refused" in message
    assert "spec.aggregator.checkpoint.storageSize cannot change from 1Gi to 5Gi" in message, message
    assert "the checkpoint volume (PVC p-checkpoints) is made once" in message and "keep storageSize 1Gi" in message
    assert "delete the job and create it again" in message
    cond = _condition(cluster, "p", "Reconciled")
    assert (cond["status"], cond["reason"]) == ("False", "InvalidSpec") and "storageSize" in cond["message"]
    (warning,) = cluster.wait_for(lambda: _events(cluster, "p", "InvalidSpec"))
    assert warning["type"] == "Warning" and "storageSize cannot change from 1Gi to 5Gi" in warning["message"]
    pvc = children(cluster, "p")[claim]["spec"]
    assert pvc["resources"]["requests"]["storage"] == "1Gi" and "storageClassName" not in pvc

    # After a restart the operator still knows what the volume was made with (the aggregator's
    # annotation), and still refuses.
    operator.stop()
    operator.start()
    time.sleep(3)
    assert "storageSize cannot change from 1Gi to 5Gi" in _refused(cluster, "p").get("message", ""), status(cluster, "p")
    annotations = children(cluster, "p")[("Deployment", "p-aggregator")]["metadata"]["annotations"]
    assert annotations["esenas.dev/checkpoint-volume"] == '{"storageSize":"1Gi"}', "nothing of the edit was applied"

    # Only the class: refused, naming that field.
    cluster.kubectl("patch", "esj/p", "--type=merge", "-p", json.dumps({"spec": {"aggregator": {"checkpoint": {"storageSize": "1Gi"}}}}))
    st = cluster.wait_for(lambda: "storageClassName" in _refused(cluster, "p").get("message", "") and status(cluster, "p"), timeout=20)
    assert "spec.aggregator.checkpoint.storageClassName cannot change from the default class to fast" in st["message"]
    # Removing the volume would restart the aggregator on an emptyDir from iteration 0: refused too.
    cluster.kubectl("patch", "esj/p", "--type=merge", "-p", json.dumps({"spec": {"aggregator": {"checkpoint": None}}}))
    st = cluster.wait_for(lambda: "cannot be removed" in _refused(cluster, "p").get("message", "") and status(cluster, "p"), timeout=20)
    assert "spec.aggregator.checkpoint.storageSize cannot be removed (it is 1Gi;" in st["message"]
    assert "restart from iteration 0" in st["message"]
    assert ("Deployment", "p-aggregator") in children(cluster, "p")
    volumes = children(cluster, "p")[("Deployment", "p-aggregator")]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "checkpoints", "persistentVolumeClaim": {"claimName": "p-checkpoints"}} in volumes

    # The volume as it was, with another edit: applied, and the refusal clears.
    apply(cluster, job_doc("p", replicas=3, aggregator={"checkpoint": {"storageSize": "1Gi"}}))
    cluster.wait_for(lambda: replicas(cluster, "p").get("p-workers-0") == 3, timeout=20)
    cond = cluster.wait_for(lambda: (c := _condition(cluster, "p", "Reconciled")).get("status") == "True" and c)
    assert status(cluster, "p")["reason"] != "InvalidSpec"
    assert operator.alive()


def test_a_job_failed_for_its_spec_is_deleted_after_its_ttl(cluster: FakeKube, operator: OperatorProcess) -> None:
    bad = job_doc("bad", ttlSecondsAfterFinished=1,
                  workers={"replicas": 2, "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}})
    apply(cluster, bad)
    st = cluster.wait_for(lambda: status(cluster, "bad").get("phase") == "Failed" and status(cluster, "bad"), timeout=20)
    assert st["reason"] == "InvalidSpec" and st.get("completionTime"), st

    def gone() -> bool:
        try:
            job(cluster, "bad")
        except ApiStatusError as err:
            return err.code == 404
        return False

    cluster.wait_for(gone, timeout=20)
