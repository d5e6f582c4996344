"""Issue 11 through the real kubectl and the real operator: a spec the API server would refuse in
a child fails the job (InvalidSpec, after a dry run) with no children; removed pod-spec fields
reach the Deployments (server-side apply); `kubectl wait` works on Succeeded and Failed."""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import yaml

from tests.fakekube.harness import FakeKube
from tests.integration.operator.opharness import (
    OperatorProcess,
    StandInAggregator,
    job_doc,
    running_status,
)
from tests.integration.operator.test_lifecycle import apply, children, status

#: Specs whose fields pass the job's own checks but make a child the API server refuses:
#: (workers fields, words of the server's message). The CRD's Kubernetes schemas may refuse some
#: of them first (kubectl apply fails), which is as good; none may leave children behind.
CHILD_BAD: list[tuple[dict[str, Any], str]] = [
    ({"resources": {"requests": {"cpu": "lots"}}}, "quantities must match the regular expression"),
    ({"tolerations": [{"key": "gpu", "operator": "Sideways", "effect": "NoSchedule"}]}, 'Unsupported value: "Sideways"'),
    # Beyond any schema: only the API server's validation of the Deployment knows these.
    ({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}, "must be less than or equal to cpu limit of 1"),
    ({"nodeSelector": {"disk": "fast disk!"}}, "spec.template.spec.nodeSelector: Invalid value"),
    ({"tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]}, "value must be empty when `operator` is 'Exists'"),
]
#: The last cases, which no CRD schema can refuse: they must reach the operator's dry run.
DRY_RUN_ONLY: int = 3


def _phase_set(cluster: FakeKube, name: str) -> dict[str, Any] | None:
    st = status(cluster, name)
    return st if st.get("phase") else None


def _removed(cluster: FakeKube, name: str, field: str) -> bool:
    return field not in _worker_pod(cluster, name)


def _events(cluster: FakeKube, name: str) -> list[dict[str, Any]]:
    return [e for e in cluster.client.list("/api/v1/namespaces/default/events") if e["involvedObject"]["name"] == name]


def test_a_child_the_api_server_refuses_fails_the_job_before_anything_is_created(cluster: FakeKube, operator: OperatorProcess) -> None:
    dry_run: list[tuple[str, str]] = []
    parsed: list[tuple[str, str]] = []
    for i, (workers, words) in enumerate(CHILD_BAD):
        doc = job_doc(f"child-bad-{i}")
        doc["spec"]["workers"].update(copy.deepcopy(workers))
        done = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
        if done.returncode != 0:  # refused by the CRD's schema: fine, if a schema can know it
            assert i < len(CHILD_BAD) - DRY_RUN_ONLY and "spec.workers" in done.stderr, done.stderr
            continue
        # The job's own parser may know a case too (it names the field); the last ones only the
        # API server's validation of the Deployment knows, so their message is the server's.
        (dry_run if i >= len(CHILD_BAD) - DRY_RUN_ONLY else parsed).append((doc["metadata"]["name"], words))
    assert len(dry_run) == DRY_RUN_ONLY
    apply(cluster, job_doc("fine"))
    for name, words in parsed:
        st = cluster.wait_for(partial(_phase_set, cluster, name))
        assert (st["phase"], st["reason"]) == ("Failed", "InvalidSpec"), st
        assert "spec.workers" in st["message"] or words in st["message"], st["message"]
        assert children(cluster, name) == {}, f"{name} left children behind"
    for name, words in dry_run:
        st = cluster.wait_for(partial(_phase_set, cluster, name))
        assert (st["phase"], st["reason"]) == ("Failed", "InvalidSpec"), st
        assert st["message"].startswith("the API server refused Deployment ") and words in st["message"], st["message"]
        (cond,) = [c for c in st["conditions"] if c["type"] == "Failed"]
        assert (cond["status"], cond["reason"]) == ("True", "InvalidSpec") and words in cond["message"]
        assert children(cluster, name) == {}, f"{name} left children behind"
        (event,) = [e for e in _events(cluster, name) if e["reason"] == "InvalidSpec"]
        assert event["type"] == "Warning" and words in event["message"]
        assert event["source"]["component"] == "esenas-operator" and event["reportingComponent"] == "esenas-operator"
        # kubectl wait on the Failed condition returns at once.
        cluster.kubectl("wait", f"esj/{name}", "--for=condition=Failed", "--timeout=20s")
    # The valid job beside them got its children: the operator was not stuck on them.
    cluster.wait_for(lambda: ("Deployment", "fine-workers-0") in children(cluster, "fine"))
    # Fixing the spec brings the job back: Failed turns False, the children appear.
    name = dry_run[0][0]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(job_doc(name)))
    st = cluster.wait_for(lambda: (s := status(cluster, name)).get("phase") == "Pending" and s)
    conds = {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]}
    assert conds["Failed"] == ("False", "SpecValid") and conds["Created"] == ("True", "Created") and st["reason"] == "Created"
    assert ("Deployment", f"{name}-workers-0") in children(cluster, name)
    assert operator.alive()


OPTIONAL: dict[str, Any] = {
    "nodeSelector": {"disk": "ssd"},
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}},
    "priorityClassName": "batch-low",
}


def _worker_pod(cluster: FakeKube, name: str) -> dict[str, Any]:
    found = children(cluster, name).get(("Deployment", f"{name}-workers-0"))
    return dict(found["spec"]["template"]["spec"]) if found else {}


def test_removing_each_optional_field_reaches_the_deployments(cluster: FakeKube, operator: OperatorProcess) -> None:
    wide = {"requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    doc = job_doc("conv", workers={"replicas": 2, **copy.deepcopy(OPTIONAL), "resources": wide},
                  aggregator={"resources": wide})
    apply(cluster, doc)
    def all_set() -> dict[str, Any] | None:
        pod = _worker_pod(cluster, "conv")
        return pod if all(k in pod for k in OPTIONAL) else None

    pod = cluster.wait_for(all_set)
    assert {k: pod[k] for k in OPTIONAL} == OPTIONAL and pod["containers"][0]["resources"] == wide
    for field in OPTIONAL:  # one at a time, each through kubectl apply, as a user edits a file
        del doc["spec"]["workers"][field]
        apply(cluster, doc)
        cluster.wait_for(partial(_removed, cluster, "conv", field))
        kept = {k: v for k, v in OPTIONAL.items() if k in doc["spec"]["workers"]}
        assert {k: v for k, v in _worker_pod(cluster, "conv").items() if k in OPTIONAL} == kept
    narrow = {"requests": {"cpu": "500m"}}
    doc["spec"]["workers"]["resources"] = narrow
    doc["spec"]["aggregator"]["resources"] = narrow
    apply(cluster, doc)
    cluster.wait_for(lambda: _worker_pod(cluster, "conv")["containers"][0]["resources"] == narrow)
    agg = cluster.wait_for(lambda: (d := children(cluster, "conv")[("Deployment", "conv-aggregator")])
                           ["spec"]["template"]["spec"]["containers"][0]["resources"] == narrow and d)
    container = agg["spec"]["template"]["spec"]["containers"][0]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    managers = {e["manager"] for e in agg["metadata"]["managedFields"]}
    assert managers == {"esenas-operator"}, managers
    # A label another manager adds to a child stays through the operator's next apply.
    cluster.kubectl("label", "deploy/conv-workers-0", "team=rl")
    doc["spec"]["workers"]["replicas"] = 3
    apply(cluster, doc)
    dep = cluster.wait_for(lambda: (d := children(cluster, "conv")[("Deployment", "conv-workers-0")])["spec"]["replicas"] == 3 and d)
    assert dep["metadata"]["labels"]["team"] == "rl"
    assert operator.alive()


def test_kubectl_wait_for_succeeded_and_status_of_a_stopped_fleet(cluster: FakeKube, operator: OperatorProcess, standin: StandInAggregator) -> None:
    apply(cluster, job_doc("ok", replicas=2))
    cluster.kubectl("wait", "esj/ok", "--for=condition=Created", "--timeout=30s")
    standin.statuses[("default", "ok")] = running_status(iteration=3)
    cluster.kubectl("wait", "esj/ok", "--for=condition=Running", "--timeout=30s")
    standin.finish("default", "ok", {"weights": [1.0]}, {"job": "ok", "iterations": 5}, [])
    standin.statuses[("default", "ok")] = running_status(iteration=5, phase="Succeeded", done=True, reason="target reward 500 reached (512.0)")
    cluster.kubectl("wait", "esj/ok", "--for=condition=Succeeded", "--timeout=30s")
    st = status(cluster, "ok")
    assert (st["phase"], st["reason"]) == ("Succeeded", "TargetReached")
    conds = {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]}
    assert conds["Succeeded"] == conds["Complete"] == ("True", "TargetReached")
    assert conds["Running"] == ("False", "TargetReached") and conds["Created"] == ("True", "Created")
    # The fleet is stopped, and the worker counts say so.
    assert st["workers"]["summary"] == "0/0" and st["workers"]["ready"] == 0
    cluster.wait_for(lambda: all(d["spec"]["replicas"] == 0 for (k, _), d in children(cluster, "ok").items() if k == "Deployment"))
    assert "0/0" in cluster.kubectl("get", "esj/ok").stdout
    events = {e["reason"]: e for e in _events(cluster, "ok")}
    assert events["Succeeded"]["source"]["component"] == "esenas-operator"
    assert operator.alive()
