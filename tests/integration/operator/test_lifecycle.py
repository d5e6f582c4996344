"""The real operator process against the fake API server, driven by the real kubectl."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import yaml
from esenas.result_bundle import unpack

from tests.fakekube.harness import ApiStatusError, FakeKube
from tests.integration.operator.opharness import (
    JOBS,
    REPO,
    OperatorProcess,
    StandInAggregator,
    job_doc,
    running_status,
)

EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
KINDS = {
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "Service": "/api/v1/namespaces/{ns}/services",
    "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
}


def children(cluster: FakeKube, job: str, ns: str = "default") -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for kind, path in KINDS.items():
        for obj in cluster.client.list(path.format(ns=ns), labelSelector=f"esenas.dev/job={job}"):
            out[(kind, obj["metadata"]["name"])] = obj
    return out


def job(cluster: FakeKube, name: str, ns: str = "default") -> dict[str, Any]:
    return dict(cluster.client.get(f"{JOBS.format(ns=ns)}/{name}"))


def status(cluster: FakeKube, name: str) -> dict[str, Any]:
    return dict(job(cluster, name).get("status") or {})


def replicas(cluster: FakeKube, name: str) -> dict[str, int]:
    return {n: d["spec"]["replicas"] for (k, n), d in children(cluster, name).items() if k == "Deployment"}


def apply(cluster: FakeKube, *docs: dict[str, Any]) -> str:
    return cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs)).stdout


def test_apply_examples_creates_every_child(cluster: FakeKube, operator: OperatorProcess) -> None:
    out = cluster.kubectl("apply", "-f", str(REPO / "manifests" / "examples")).stdout
    assert out.count("created") == len(EXAMPLES)
    for path in EXAMPLES:
        doc = yaml.safe_load(path.read_text())
        name = doc["metadata"]["name"]
        expected = {
            ("ConfigMap", f"{name}-spec"), ("Secret", f"{name}-token"), ("Deployment", f"{name}-aggregator"),
            ("Service", f"{name}-aggregator"), ("NetworkPolicy", f"{name}-aggregator"), ("Deployment", f"{name}-workers-0"),
        }
        found = cluster.wait_for(lambda name=name, expected=expected: set(children(cluster, name)) == expected and children(cluster, name))
        uid = job(cluster, name)["metadata"]["uid"]
        for obj in found.values():
            assert [r["uid"] for r in obj["metadata"]["ownerReferences"]] == [uid]
        assert found[("Deployment", f"{name}-workers-0")]["spec"]["replicas"] == doc["spec"]["workers"]["replicas"]
        st = cluster.wait_for(lambda name=name: status(cluster, name).get("phase") and status(cluster, name))
        assert st["phase"] == "Pending"
        assert st["workers"]["desired"] == doc["spec"]["workers"]["replicas"]
        assert st["selector"] == f"esenas.dev/job={name},app.kubernetes.io/component=worker"
        cm = found[("ConfigMap", f"{name}-spec")]
        assert yaml.safe_load(cm["data"]["job.yaml"])["spec"]["environment"]["id"] == doc["spec"]["environment"]["id"]
    table = cluster.kubectl("get", "esj").stdout
    assert table.split("\n")[0].split() == ["NAME", "PHASE", "REASON", "ITERATION", "BEST", "WORKERS", "AGE"]
    assert "inverted-pendulum" in table and "0/2" in cluster.wait_for(lambda: "0/2" in cluster.kubectl("get", "esj").stdout and cluster.kubectl("get", "esj").stdout)
    explain = cluster.kubectl("explain", "esj.spec.policy.partitions").stdout
    assert "Number of shared weights (colours) when topology is partition." in explain
    assert operator.alive()
    # The operator's own metrics: contract names, one series per job, valid for promtool.
    metrics = cluster.wait_for(lambda: 'state="ready"' in (m := operator.metrics()) and m)
    assert f'esenas_operator_jobs{{phase="Pending"}} {len(EXAMPLES)}.0' in metrics
    assert 'esenas_operator_job_workers{esenas_job="inverted-pendulum",esenas_namespace="default",state="desired"} 2.0' in metrics
    assert "esenas_operator_reconciles_total" in metrics and "esenas_operator_reconcile_errors_total 0.0" in metrics
    promtool = REPO / ".tools" / "bin" / "promtool"
    check = subprocess.run([str(promtool if promtool.exists() else "promtool"), "check", "metrics"], input=metrics, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_scale_suspend_resume_and_delete(cluster: FakeKube, operator: OperatorProcess) -> None:
    apply(cluster, job_doc("fleet", replicas=4, workers={"replicas": 4, "shardSize": 1000}, aggregator={"checkpoint": {"storageSize": "1Gi"}}))
    cluster.wait_for(lambda: replicas(cluster, "fleet") == {"fleet-aggregator": 1, "fleet-workers-0": 4})
    assert ("PersistentVolumeClaim", "fleet-checkpoints") in children(cluster, "fleet")
    aggregator_rv = children(cluster, "fleet")[("Deployment", "fleet-aggregator")]["metadata"]["resourceVersion"]
    token = children(cluster, "fleet")[("Secret", "fleet-token")]["data"]["token"]

    cluster.kubectl("scale", "esj/fleet", "--replicas=2500")
    want = {"fleet-aggregator": 1, "fleet-workers-0": 1000, "fleet-workers-1": 1000, "fleet-workers-2": 500}
    cluster.wait_for(lambda: replicas(cluster, "fleet") == want)
    cluster.kubectl("scale", "esj/fleet", "--replicas=5")
    cluster.wait_for(lambda: replicas(cluster, "fleet") == {"fleet-aggregator": 1, "fleet-workers-0": 5})
    now = children(cluster, "fleet")
    assert now[("Deployment", "fleet-aggregator")]["metadata"]["resourceVersion"] == aggregator_rv, "aggregator untouched by scaling"
    assert now[("Secret", "fleet-token")]["data"]["token"] == token
    assert cluster.wait_for(lambda: status(cluster, "fleet").get("workers", {}).get("desired") == 5)

    cluster.kubectl("patch", "esj/fleet", "--type=merge", "-p", json.dumps({"spec": {"suspend": True}}))
    cluster.wait_for(lambda: replicas(cluster, "fleet") == {"fleet-aggregator": 0, "fleet-workers-0": 0})
    st = cluster.wait_for(lambda: status(cluster, "fleet").get("phase") == "Suspended" and status(cluster, "fleet"))
    (cond,) = [c for c in st["conditions"] if c["type"] == "Suspended"]
    assert cond["status"] == "True"
    assert ("PersistentVolumeClaim", "fleet-checkpoints") in children(cluster, "fleet"), "the checkpoint survives"
    # kopf posts events from a background queue, after the status patch: wait for it
    events = cluster.wait_for(lambda: "Suspended" in (got := {
        e["reason"] for e in cluster.client.list("/api/v1/namespaces/default/events") if e["involvedObject"]["name"] == "fleet"}) and got)
    assert "NoCheckpointVolume" not in events

    cluster.kubectl("patch", "esj/fleet", "--type=merge", "-p", json.dumps({"spec": {"suspend": False}}))
    cluster.wait_for(lambda: replicas(cluster, "fleet") == {"fleet-aggregator": 1, "fleet-workers-0": 5})
    st = cluster.wait_for(lambda: status(cluster, "fleet").get("phase") == "Pending" and status(cluster, "fleet"))
    assert [c["status"] for c in st["conditions"] if c["type"] == "Suspended"] == ["False"]

    cluster.kubectl("delete", "esj/fleet")
    cluster.wait_for(lambda: children(cluster, "fleet") == {})
    # Without a checkpoint volume, suspending warns that resume starts over.
    apply(cluster, job_doc("ephemeral", suspend=True))
    cluster.wait_for(lambda: any(
        e["reason"] == "NoCheckpointVolume" and e["involvedObject"]["name"] == "ephemeral" and e["type"] == "Warning"
        for e in cluster.client.list("/api/v1/namespaces/default/events")))
    assert replicas(cluster, "ephemeral") == {"ephemeral-aggregator": 0, "ephemeral-workers-0": 0}
    assert operator.alive()


def _condition(cluster: FakeKube, name: str, type_: str) -> dict[str, Any]:
    return next((c for c in status(cluster, name).get("conditions") or () if c["type"] == type_), {})


def test_a_job_scaled_to_zero_says_nothing_rolls_out(cluster: FakeKube, operator: OperatorProcess) -> None:
    """kubectl scale --replicas=0, as one would a Deployment: the Reason column says why nothing trains."""
    apply(cluster, job_doc("zero", replicas=3))
    cluster.wait_for(lambda: replicas(cluster, "zero").get("zero-workers-0") == 3)
    cluster.kubectl("scale", "esj/zero", "--replicas=0")
    st = cluster.wait_for(lambda: (s := status(cluster, "zero")).get("reason") == "NoWorkers" and s, timeout=30)
    assert st["message"].startswith("spec.workers.replicas is 0: nothing rolls out until kubectl scale esj/zero --replicas=N")
    assert cluster.kubectl("get", "esj/zero", "--no-headers").stdout.split()[2] == "NoWorkers"
    assert replicas(cluster, "zero")["zero-workers-0"] == 0
    cluster.kubectl("scale", "esj/zero", "--replicas=2")
    st = cluster.wait_for(lambda: (s := status(cluster, "zero")).get("reason") != "NoWorkers" and s, timeout=30)
    assert st["reason"] == "Created" and "2 workers" in st["message"]


def test_a_fleet_larger_than_the_work_warns_and_clears_on_scale(cluster: FakeKube, operator: OperatorProcess) -> None:
    # 4 pairs + 1 exact eval = 5 work items per iteration for 20 pods: 15 pods can never get work.
    apply(cluster, job_doc("idle", replicas=20, es={"perturbations": 4, "exactEvals": 1}))
    cond = cluster.wait_for(lambda: _condition(cluster, "idle", "FleetOversized"))
    assert (cond["status"], cond["reason"]) == ("True", "FleetExceedsWork")
    assert "replicas 20 exceeds the 5 work items per iteration" in cond["message"], cond
    warning = cluster.wait_for(lambda: next((
        e for e in cluster.client.list("/api/v1/namespaces/default/events")
        if e["involvedObject"]["name"] == "idle" and e["reason"] == "FleetExceedsWork"), None))
    assert warning["type"] == "Warning"
    assert "15 worker pods stay idle" in warning["message"] and "spec.es.perturbationsPerWorker" in warning["message"]
    described = cluster.kubectl("describe", "esj/idle").stdout
    assert "FleetExceedsWork" in described

    cluster.kubectl("scale", "esj/idle", "--replicas=5")
    cond = cluster.wait_for(lambda: (c := _condition(cluster, "idle", "FleetOversized")).get("status") == "False" and c)
    assert cond["reason"] == "FleetFitsWork" and cond["observedGeneration"] == 2
    assert replicas(cluster, "idle")["idle-workers-0"] == 5

    warnings = [e for e in cluster.client.list("/api/v1/namespaces/default/events")
                if e["involvedObject"]["name"] == "idle" and e["reason"] == "FleetExceedsWork"]
    assert sum(int(e.get("count") or 1) for e in warnings) == 1, "one Warning, on the change to oversized"
    # A running job keeps how it gives its population (esenas.edits): switching to per worker is
    # refused at admission.
    switch = {"spec": {"es": {"perturbations": None, "perturbationsPerWorker": 2}}}
    refused = cluster.kubectl("patch", "esj/idle", "--type=merge", "-p", json.dumps(switch), check=False)
    assert refused.returncode != 0 and "keeps how it gives its population" in refused.stderr, refused.stderr

    # Per worker, the population follows the replicas: scaling up stays within the work, and the
    # spec ConfigMap the aggregator reads carries the new replica count.
    apply(cluster, job_doc("pw", replicas=40, es={"perturbationsPerWorker": 2, "topDirections": 60}))
    cluster.wait_for(lambda: replicas(cluster, "pw").get("pw-workers-0") == 40)
    cluster.kubectl("scale", "esj/pw", "--replicas=50")
    cluster.wait_for(lambda: replicas(cluster, "pw").get("pw-workers-0") == 50)
    assert _condition(cluster, "pw", "FleetOversized") == {}, "per worker, the fleet never outgrows the work"
    spec = yaml.safe_load(children(cluster, "pw")[("ConfigMap", "pw-spec")]["data"]["job.yaml"])["spec"]
    assert spec["workers"]["replicas"] == 50 and spec["es"]["perturbationsPerWorker"] == 2
    assert "perturbations" not in spec["es"]
    # A scale that would leave topDirections above the population is refused at admission.
    refused = cluster.kubectl("scale", "esj/pw", "--replicas=10", check=False)
    assert refused.returncode != 0 and "topDirections must be <= perturbationsPerWorker" in refused.stderr, refused.stderr
    assert job(cluster, "pw")["spec"]["workers"]["replicas"] == 50
    assert operator.alive()


def test_status_follows_the_aggregator_to_success_and_ttl(cluster: FakeKube, operator: OperatorProcess, standin: StandInAggregator) -> None:
    apply(cluster, job_doc("done", replicas=3, ttlSecondsAfterFinished=2))
    cluster.wait_for(lambda: status(cluster, "done").get("phase") == "Pending")
    standin.statuses[("default", "done")] = running_status(iteration=4, trial="trial 2/3")
    st = cluster.wait_for(lambda: status(cluster, "done").get("iteration") == 4 and status(cluster, "done"))
    assert st["phase"] == "Running"
    assert st["bestReward"] == 50.0 and st["envSteps"] == 4000 and st["workers"]["connected"] == 2
    assert st["bestTopology"]["size"] == 17 and st["trial"] == "trial 2/3"
    assert "Running" in cluster.kubectl("get", "esj/done").stdout
    assert "trial 2/3" in cluster.kubectl("get", "esj/done", "-o", "wide").stdout

    policy = {"template": "linear", "weights": [0.5, -0.25]}
    standin.finish("default", "done", policy, {"job": "done", "iterations": 9}, [])
    standin.statuses[("default", "done")] = running_status(iteration=9, phase="Succeeded", done=True, reason="targetReward reached", resultPath="/var/lib/esenas/result")
    st = cluster.wait_for(lambda: status(cluster, "done").get("phase") == "Succeeded" and status(cluster, "done"), timeout=15)
    # Until the CRD lists chunks/sha256/... (docs/results.md), the API server may prune them.
    assert st["result"]["configMap"] == "done-result" and st["result"].get("chunks", 1) == 1
    assert [c["status"] for c in st["conditions"] if c["type"] == "Complete"] == ["True"]
    cluster.wait_for(lambda: any(  # posted from kopf's event queue, after the status patch
        e.get("reason") == "Succeeded" and e["involvedObject"]["name"] == "done" for e in cluster.client.list("/api/v1/namespaces/default/events")))
    # The job is deleted after its TTL, and its children with it (result included).
    cluster.wait_for(lambda: _gone(cluster, "done"), timeout=20)
    cluster.wait_for(lambda: children(cluster, "done") == {})


def _gone(cluster: FakeKube, name: str) -> bool:
    try:
        job(cluster, name)
    except ApiStatusError as err:
        return err.code == 404
    return False


def test_result_configmap_and_stopped_fleet(cluster: FakeKube, operator: OperatorProcess, standin: StandInAggregator) -> None:
    summary = {"job": "keep", "stopReason": "maxIterations", "iterations": 2}
    standin.finish("default", "keep", {"weights": [1.0]}, summary, [{"iteration": 0}, {"iteration": 1}])
    standin.statuses[("default", "keep")] = running_status(iteration=2, phase="Succeeded", done=True, reason="maxIterations")
    apply(cluster, job_doc("keep", replicas=3))
    cluster.wait_for(lambda: status(cluster, "keep").get("phase") == "Succeeded", timeout=15)
    cluster.wait_for(lambda: replicas(cluster, "keep") == {"keep-aggregator": 0, "keep-workers-0": 0})
    # The result outlives the stopped fleet: a manifest ConfigMap and its chunk, owned by the job.
    kids = children(cluster, "keep")
    manifest = json.loads(kids[("ConfigMap", "keep-result")]["data"]["manifest.json"])
    assert json.loads(kids[("ConfigMap", "keep-result")]["data"]["summary.json"]) == summary
    chunk = kids[("ConfigMap", "keep-result-0")]
    files = unpack(manifest, [(base64.b64decode(chunk["binaryData"]["chunk"]), chunk["data"]["sha256"])])
    assert json.loads(files["policy.json"]) == {"weights": [1.0]} and json.loads(files["summary.json"]) == summary
    assert json.loads(files["history.json"]) == [{"iteration": 0}, {"iteration": 1}]
    # A finished job is not restarted by a later scale.
    cluster.kubectl("scale", "esj/keep", "--replicas=7")
    cluster.wait_for(lambda: status(cluster, "keep").get("phase") == "Succeeded")
    assert replicas(cluster, "keep") == {"keep-aggregator": 0, "keep-workers-0": 0}


def test_deadline_and_crashing_aggregator_fail_the_job(cluster: FakeKube, operator: OperatorProcess, standin: StandInAggregator) -> None:
    # An aggregator that stopped itself at the deadline succeeds; a job whose aggregator does not answer fails.
    standin.statuses[("default", "ontime")] = running_status(phase="Succeeded", done=True, reason="deadline of 1 s reached")
    apply(cluster, job_doc("late", stopping={"deadlineSeconds": 1}), job_doc("crashy", backoffLimit=1),
          job_doc("ontime", stopping={"deadlineSeconds": 1}))
    st = cluster.wait_for(lambda: status(cluster, "late").get("phase") == "Failed" and status(cluster, "late"), timeout=20)
    assert st["reason"] == "DeadlineExceeded" and "deadlineSeconds" in st["message"]
    st = cluster.wait_for(lambda: status(cluster, "ontime").get("phase") == "Succeeded" and status(cluster, "ontime"), timeout=20)
    assert st["reason"] == "DeadlineReached", st
    cluster.wait_for(lambda: replicas(cluster, "late") == {"late-aggregator": 0, "late-workers-0": 0})
    # The aggregator's pod restarts (kubelet's count, as a real cluster would report it).
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "crashy-aggregator-abc", "labels": {"esenas.dev/job": "crashy", "app.kubernetes.io/component": "aggregator"}},
        "spec": {"containers": [{"name": "aggregator", "image": "x"}]},
    }
    cluster.client.create("/api/v1/namespaces/default/pods", pod)
    # Its log tail is the termination message (FallbackToLogsOnError), as the kubelet reports it.
    crash = "ModuleNotFoundError: No module named 'nowhere'"
    terminated = {"exitCode": 1, "reason": "Error", "message": f"Traceback (most recent call last):\n  ...\n{crash}\n"}
    cluster.client.patch(
        "/api/v1/namespaces/default/pods/crashy-aggregator-abc/status",
        {"status": {"containerStatuses": [{"name": "aggregator", "restartCount": 4, "ready": False, "image": "x", "imageID": "", "started": False,
                                           "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": terminated}}]}},
    )
    st = cluster.wait_for(lambda: status(cluster, "crashy").get("phase") == "Failed" and status(cluster, "crashy"), timeout=20)
    assert st["reason"] == "AggregatorCrashLoop" and "restarted 4 times" in st["message"]
    assert st["message"].endswith(crash), st["message"]
    (failed,) = [c for c in st["conditions"] if c["type"] == "Failed"]
    assert (failed["status"], failed["reason"]) == ("True", "AggregatorCrashLoop") and crash in failed["message"]
    assert st["aggregatorRestarts"] == 4 and st["workers"]["summary"] == "0/0"
    described = cluster.kubectl("describe", "esj/crashy").stdout
    assert crash in described and "esenas-operator" in described, described
    assert operator.alive()


def test_worker_pods_that_cannot_run_show_as_a_condition_and_a_warning(cluster: FakeKube, operator: OperatorProcess) -> None:
    apply(cluster, job_doc("sick"))
    cluster.wait_for(lambda: status(cluster, "sick").get("phase") == "Pending")
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "sick-workers-0-abc", "labels": {"esenas.dev/job": "sick", "app.kubernetes.io/component": "worker"}},
        "spec": {"containers": [{"name": "worker", "image": "x"}]},
    }
    cluster.client.create("/api/v1/namespaces/default/pods", pod)
    crash = "ModuleNotFoundError: No module named 'my_pkg'"  # the worker image lacks the job's environment
    terminated = {"exitCode": 2, "reason": "Error", "message": f"Traceback (most recent call last):\n  ...\n{crash}\n"}
    cluster.client.patch(
        "/api/v1/namespaces/default/pods/sick-workers-0-abc/status",
        {"status": {"containerStatuses": [{"name": "worker", "restartCount": 3, "ready": False, "image": "x", "imageID": "", "started": False,
                                           "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": terminated}}]}},
    )

    def failing() -> dict[str, Any] | None:
        return next((c for c in status(cluster, "sick").get("conditions", []) if c["type"] == "WorkersFailing"), None)

    cond = cluster.wait_for(lambda: (c := failing()) is not None and c["status"] == "True" and c, timeout=30)
    assert cond["reason"] == "CrashLoopBackOff"
    assert cond["message"] == f"1 of the 1 worker pods listed are in CrashLoopBackOff: {crash}"
    warnings = [e for e in cluster.client.list("/api/v1/namespaces/default/events")
                if e["involvedObject"]["name"] == "sick" and e.get("reason") == "WorkersFailing"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning" and crash in warnings[0]["message"]
    assert crash in cluster.kubectl("describe", "esj/sick").stdout
    # kubectl get's Reason column says so too, as a pod's STATUS column says CrashLoopBackOff.
    assert cluster.kubectl("get", "esj/sick", "--no-headers").stdout.split()[1:3] == ["Pending", "WorkersFailing"]
    # The pod recovers (a fixed image): the condition turns False, and stays on the record.
    cluster.client.patch("/api/v1/namespaces/default/pods/sick-workers-0-abc/status",
                         {"status": {"containerStatuses": [{"name": "worker", "restartCount": 3, "ready": True, "image": "x", "imageID": "",
                                                            "started": True, "state": {"running": {}}}]}})
    cond = cluster.wait_for(lambda: (c := failing()) is not None and c["status"] == "False" and c, timeout=30)
    assert cond["reason"] == "WorkersRunning"
    assert cluster.wait_for(lambda: status(cluster, "sick").get("reason") == "Created", timeout=30)
    assert operator.alive()
