"""An operator restart while a job's latest edit stands refused: the job is still tracked from the
spec its fleet runs (recorded on its aggregator Deployment, esenas_operator.terms), whichever
refused the edit (the job's parser, or the API server's dry run)."""

from __future__ import annotations

import copy
from typing import Any

from tests.fakekube.harness import FakeKube
from tests.integration.operator.opharness import (
    OperatorProcess,
    StandInAggregator,
    job_doc,
    running_status,
)
from tests.integration.operator.test_lifecycle import apply, job, replicas, status
from tests.integration.operator.test_trust import CHILD_BAD, TOO_BIG


def _refused(cluster: FakeKube, name: str) -> dict[str, Any] | None:
    st = status(cluster, name)
    cond = next((c for c in st.get("conditions") or () if c["type"] == "Reconciled"), None)
    return st if cond is not None and (cond["status"], cond["reason"]) == ("False", "InvalidSpec") else None


def _refuse(cluster: FakeKube, operator: OperatorProcess, doc: dict[str, Any], workers: dict[str, Any], **spec: Any) -> None:
    """Apply an edit the operator refuses, then restart the operator."""
    edited = copy.deepcopy(doc)
    edited["spec"]["workers"].update(workers, replicas=9)
    edited["spec"].update(spec)
    apply(cluster, edited)
    name = doc["metadata"]["name"]
    gen = job(cluster, name)["metadata"]["generation"]
    cluster.wait_for(lambda: (st := _refused(cluster, name)) is not None and f"generation {gen}" in st["message"])
    operator.stop()
    operator.start()


def test_a_job_whose_edit_the_parser_refused_is_tracked_and_finishes_after_a_restart(
        cluster: FakeKube, operator: OperatorProcess, standin: StandInAggregator) -> None:
    doc = job_doc("r", replicas=2)
    apply(cluster, doc)
    standin.statuses[("default", "r")] = running_status(iteration=3)
    cluster.kubectl("wait", "esj/r", "--for=condition=Running", "--timeout=30s")
    # Over the job's 96 KiB: the parser refuses it, so after the restart the job's own spec cannot run.
    _refuse(cluster, operator, doc, {"affinity": TOO_BIG})
    standin.statuses[("default", "r")] = running_status(iteration=9)
    st = cluster.wait_for(lambda: (s := status(cluster, "r")).get("iteration") == 9 and s, timeout=30)
    assert (st["phase"], st["reason"], st["workers"]["desired"]) == ("Running", "InvalidSpec", 2), st
    standin.finish("default", "r", {"weights": [1.0]}, {"job": "r", "iterations": 10}, [])
    standin.statuses[("default", "r")] = running_status(iteration=10, phase="Succeeded", done=True, reason="maxIterations reached")
    st = cluster.wait_for(lambda: (s := status(cluster, "r")).get("phase") == "Succeeded" and s, timeout=30)
    assert st["reason"] == "MaxIterations" and st.get("result"), st
    cluster.wait_for(lambda: replicas(cluster, "r") == {"r-aggregator": 0, "r-workers-0": 0})
    assert operator.alive()


def test_a_job_whose_edit_the_dry_run_refused_keeps_its_applied_terms_after_a_restart(
        cluster: FakeKube, operator: OperatorProcess, standin: StandInAggregator) -> None:
    doc = job_doc("d", replicas=2, backoffLimit=1)
    apply(cluster, doc)
    standin.statuses[("default", "d")] = running_status(iteration=3)
    cluster.kubectl("wait", "esj/d", "--for=condition=Running", "--timeout=30s")
    # The parser takes this edit, the API server's dry run of the worker Deployment refuses it.
    _refuse(cluster, operator, doc, CHILD_BAD[0][0], backoffLimit=50)
    standin.statuses[("default", "d")] = running_status(iteration=7)
    st = cluster.wait_for(lambda: (s := status(cluster, "d")).get("iteration") == 7 and s, timeout=30)
    assert (st["phase"], st["reason"], st["workers"]["desired"]) == ("Running", "InvalidSpec", 2), st
    # The aggregator restarts 3 times: over the applied backoffLimit (1), not the refused one (50).
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "d-aggregator-abc", "labels": {"esenas.dev/job": "d", "app.kubernetes.io/component": "aggregator"}},
           "spec": {"containers": [{"name": "aggregator", "image": "x"}]}}
    cluster.client.create("/api/v1/namespaces/default/pods", pod)
    cluster.client.patch("/api/v1/namespaces/default/pods/d-aggregator-abc/status", {"status": {"containerStatuses": [
        {"name": "aggregator", "restartCount": 3, "ready": False, "image": "x", "imageID": "", "started": False,
         "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
    st = cluster.wait_for(lambda: (s := status(cluster, "d")).get("phase") == "Failed" and s, timeout=30)
    assert st["reason"] == "AggregatorCrashLoop" and "spec.backoffLimit 1)" in st["message"], st
    cluster.wait_for(lambda: replicas(cluster, "d") == {"d-aggregator": 0, "d-workers-0": 0})
    assert operator.alive()
