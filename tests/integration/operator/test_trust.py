"""Issue 11 through the real kubectl and the real operator: the issue's bad specs are refused by the
CRD's schema or fail the job (InvalidSpec, after a dry run or for their size) with no children;
an invalid edit of a running job is refused while its fleet runs on; removed pod-spec fields
reach the Deployments (server-side apply); `kubectl wait` works on Succeeded and Failed."""

from __future__ import annotations

import copy
import json
from functools import partial
from pathlib import Path
from typing import Any, Final

import kopf
import yaml

from tests.fakekube.harness import FakeKube
from tests.integration.operator.opharness import (
    JOBS,
    OperatorProcess,
    StandInAggregator,
    env_without_proxy,
    job_doc,
    running_status,
)
from tests.integration.operator.test_lifecycle import apply, children, job, status

#: Bad specs of issue 11 that the CRD's schema refuses at `kubectl apply`: (spec fields, words of
#: the API server's answer). Nothing is stored, so nothing can have children.
SCHEMA_BAD: list[tuple[str, dict[str, Any], str]] = [
    ("cpu-lots", {"workers": {"replicas": 2, "resources": {"requests": {"cpu": "lots"}}}},
     'spec.workers.resources.requests.cpu: Invalid value: "lots": spec.workers.resources.requests.cpu in body should match'),
    ("sideways", {"workers": {"replicas": 2, "tolerations": [{"key": "gpu", "operator": "Sideways", "effect": "NoSchedule"}]}},
     'spec.workers.tolerations[0].operator: Unsupported value: "Sideways": supported values: "Exists", "Equal"'),
    ("deep", {"policy": {"template": "mlp", "hiddenLayers": [8] * 17}},
     "spec.policy.hiddenLayers: Too many: 17: must have at most 16 items"),
    # Pod knobs the API server would refuse only in the worker Deployment (esenas.schema_pod).
    ("label", {"workers": {"replicas": 2, "nodeSelector": {"disk": "fast disk!"}}},
     'spec.workers.nodeSelector.disk: Invalid value: "fast disk!"'),
    ("exists", {"workers": {"replicas": 2, "tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]}},
     "spec.workers.tolerations[0].value: Invalid value: \"object\": must be empty when operator is 'Exists'"),
]
#: A spec the schema takes but the job's parser refuses, naming the field: an affinity rule CEL
#: cannot afford (esenas.schema_affinity). The operator fails the job before it makes anything.
PARSER_BAD: Final = ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "disk", "operator": "Exists", "values": ["ssd"]}]}]}}}},
    "spec.workers.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
    ".matchExpressions[0].values: must be empty when operator is 'Exists'")
#: Pod knobs neither the schema nor the parser refuses, which make a child the API server's own
#: validation of the Deployment refuses: (workers fields, words of the server's message). They
#: must reach the operator's dry run. The parser leaves how matchLabelKeys relate to the
#: labelSelector, which changes with the Kubernetes version, to the API server.
CHILD_BAD: list[tuple[dict[str, Any], str]] = [
    ({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "matchLabelKeys": ["pod-template-hash"]}]}}},
     "matchLabelKeys: Forbidden: must not be specified when labelSelector is not set"),
]
#: Over the job's 96 KiB, in node selector values, which no schema bounds: the parser refuses it.
TOO_BIG: Final = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "rack", "operator": "In", "values": [f"zone-{i:04d}-" + "r" * 64 for i in range(1500)]}]}]}}}


def _no_job(cluster: FakeKube, name: str) -> None:
    gone = cluster.kubectl("get", f"esj/{name}", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone
    assert children(cluster, name) == {}, f"{name} left children behind"


def test_bad_specs_of_the_issue_are_refused_by_the_schema(cluster: FakeKube, operator: OperatorProcess) -> None:
    for name, spec, words in SCHEMA_BAD:
        doc = job_doc(name)
        doc["spec"].update(copy.deepcopy(spec))
        for verb in (["apply"], ["apply", "--server-side"], ["create"]):
            done = cluster.kubectl(*verb, "-f", "-", input=yaml.safe_dump(doc), check=False)
            assert done.returncode != 0 and f'The ESENASJob "{name}" is invalid' in done.stderr and words in done.stderr, (verb, done.stderr)
        _no_job(cluster, name)
    # An unknown top-level field. kubectl's default field validation is Strict: the API server
    # refuses the object, naming the field.
    doc = job_doc("typo", colour="blue")
    done = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert done.returncode != 0 and 'unknown field "spec.colour"' in done.stderr, done.stderr
    _no_job(cluster, "typo")
    # With --validate=warn the structural schema prunes the field and says so; with
    # --validate=false it is pruned silently. Either way the stored job is the one without it,
    # which is valid, and runs.
    warned = cluster.kubectl("apply", "--validate=warn", "-f", "-", input=yaml.safe_dump(doc))
    assert 'Warning: unknown field "spec.colour"' in warned.stderr, warned.stderr
    silent = cluster.kubectl("apply", "--validate=false", "-f", "-", input=yaml.safe_dump(job_doc("typo2", colour="blue")))
    assert "colour" not in silent.stderr
    for name in ("typo", "typo2"):
        assert "colour" not in job(cluster, name)["spec"]
        cluster.wait_for(lambda n=name: ("Deployment", f"{n}-workers-0") in children(cluster, n))
    assert operator.alive()


def _phase_set(cluster: FakeKube, name: str) -> dict[str, Any] | None:
    st = status(cluster, name)
    return st if st.get("phase") else None


def _removed(cluster: FakeKube, name: str, field: str) -> bool:
    return field not in _worker_pod(cluster, name)


def _events(cluster: FakeKube, name: str) -> list[dict[str, Any]]:
    return [e for e in cluster.client.list("/api/v1/namespaces/default/events") if e["involvedObject"]["name"] == name]


def test_a_child_the_api_server_refuses_fails_the_job_before_anything_is_created(cluster: FakeKube, operator: OperatorProcess) -> None:
    dry_run: list[tuple[str, str]] = []
    for i, (workers, words) in enumerate(CHILD_BAD):
        doc = job_doc(f"child-bad-{i}")
        doc["spec"]["workers"].update(copy.deepcopy(workers))
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))  # the CRD cannot know
        dry_run.append((doc["metadata"]["name"], words))
    apply(cluster, job_doc("fine"))
    for name, words in dry_run:
        st = cluster.wait_for(partial(_phase_set, cluster, name))
        assert (st["phase"], st["reason"]) == ("Failed", "InvalidSpec"), st
        assert st["message"].startswith("the API server refused Deployment ") and words in st["message"], st["message"]
        (cond,) = [c for c in st["conditions"] if c["type"] == "Failed"]
        assert (cond["status"], cond["reason"]) == ("True", "InvalidSpec") and words in cond["message"]
        assert children(cluster, name) == {}, f"{name} left children behind"
        # The Event is posted after the status write: wait for it rather than read it at once.
        (event,) = cluster.wait_for(lambda n=name: [e for e in _events(cluster, n) if e["reason"] == "InvalidSpec"])
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
    events = cluster.wait_for(lambda: (ev := {e["reason"]: e for e in _events(cluster, "ok")}) and "Succeeded" in ev and ev)
    assert events["Succeeded"]["source"]["component"] == "esenas-operator"
    assert operator.alive()


#: About 250 KB of spec: within every bound of the CRD, over the job's own 96 KiB.
LARGE = 250_000


def _large(name: str, size: int = LARGE) -> dict[str, Any]:
    return job_doc(name, environment={"id": "InvertedPendulum-v5", "kwargs": {"blob": "x" * size}})


def _handled(cluster: FakeKube, name: str) -> dict[str, Any] | None:
    """The job once the operator failed it and kopf stored what it handled (status.kopf)."""
    obj = job(cluster, name)
    st = obj.get("status") or {}
    return obj if st.get("phase") and "last-handled-configuration" in (st.get("kopf") or {}) else None


def test_a_250_kb_spec_is_refused_and_can_be_deleted(cluster: FakeKube, operator: OperatorProcess) -> None:
    # kubectl create and server-side apply store the job as sent.
    cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(_large("big-create")))
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(_large("big-ssa")))
    # Client-side apply also copies the job into its last-applied annotation: 250 KB still fits
    # the 256 KiB of annotations...
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(_large("big-csa")))
    # ... 300 KB does not, and the API server refuses the job itself, saying so.
    out = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(_large("huge", 300_000)), check=False)
    assert out.returncode != 0
    assert 'The ESENASJob "huge" is invalid: metadata.annotations: Too long: must have at most 262144 bytes' in out.stderr
    for name in ("big-create", "big-ssa", "big-csa"):
        obj = cluster.wait_for(partial(_handled, cluster, name))
        st = obj["status"]
        assert (st["phase"], st["reason"]) == ("Failed", "InvalidSpec"), st
        assert f"spec.environment.kwargs: is {LARGE + 11} bytes as JSON; must be at most 65536 (64 KiB)" in st["message"]
        assert "must be at most 98304 (96 KiB)" in st["message"], st["message"]
        (event,) = cluster.wait_for(lambda n=name: [e for e in _events(cluster, n) if e["reason"] == "InvalidSpec"])
        assert event["type"] == "Warning" and "must be at most 98304 (96 KiB)" in event["message"]
        assert children(cluster, name) == {}, f"{name} left children behind"
        # kopf's own copy of the spec is in the status, none in the annotations.
        assert not [k for k in obj["metadata"].get("annotations") or {} if k.startswith("esenas.dev/")]
        assert json.loads(st["kopf"]["last-handled-configuration"])["spec"]["environment"]["kwargs"]["blob"] == "x" * LARGE
        assert obj["metadata"]["finalizers"] == ["esenas.dev/finalizer"]
        cluster.kubectl("delete", f"esj/{name}", "--timeout=30s")
    assert cluster.client.list(JOBS.format(ns="default")) == []
    assert operator.alive()


def test_a_job_from_an_older_operator_moves_its_state_from_annotations_to_status(
        cluster: FakeKube, standin: StandInAggregator, tmp_path: Path) -> None:
    """An older operator kept kopf's diff base in annotations: the new one reads it (the job is
    resumed, not created again) and moves it into status.kopf."""
    path = f"{JOBS.format(ns='default')}/old"
    created = cluster.client.create(JOBS.format(ns="default"), job_doc("old"))
    legacy = kopf.AnnotationsDiffBaseStorage(prefix="esenas.dev", key="last-handled-configuration")
    patch = kopf.Patch()
    body = kopf.Body(created)
    legacy.store(body=body, patch=patch, essence=legacy.build(body=body))
    annotations = dict(patch["metadata"]["annotations"])
    assert set(annotations) == {"esenas.dev/last-handled-configuration", "esenas.dev/kopf-managed"}
    cluster.client.patch(path, {"metadata": {"annotations": annotations, "finalizers": ["esenas.dev/finalizer"]}})
    cluster.client.patch(f"{path}/status", {"status": {"phase": "Pending", "reason": "Created"}})
    env = {**env_without_proxy(), **{k: v for k, v in cluster.env().items() if k in ("KUBECONFIG", "KUBECACHEDIR")}}
    op = OperatorProcess(tmp_path, env, standin.url_template, interval=1.0)
    op.start()
    try:
        def migrated() -> dict[str, Any] | None:
            o = job(cluster, "old")
            return o if "kopf" in o.get("status", {}) and not o["metadata"].get("annotations") else None

        moved = cluster.wait_for(migrated)
        cluster.wait_for(lambda: ("Deployment", "old-workers-0") in children(cluster, "old"))
        assert json.loads(moved["status"]["kopf"]["last-handled-configuration"])["spec"] == job(cluster, "old")["spec"]
        log = op.log()
        assert "Resuming is processed" in log and "Creation is processed" not in log, log[-3000:]
        cluster.kubectl("delete", "esj/old", "--timeout=30s")
    finally:
        alive = op.alive()
        op.stop()
    assert alive, op.log()[-3000:]


def _reconciled(cluster: FakeKube, name: str, value: str) -> dict[str, Any] | None:
    st = status(cluster, name)
    cond = next((c for c in st.get("conditions") or () if c["type"] == "Reconciled"), None)
    return st if cond is not None and cond["status"] == value else None


def test_an_invalid_edit_of_a_running_job_is_refused_and_its_fleet_keeps_running(
        cluster: FakeKube, operator: OperatorProcess, standin: StandInAggregator) -> None:
    doc = job_doc("edit", replicas=2)
    apply(cluster, doc)
    standin.statuses[("default", "edit")] = running_status(iteration=3)
    cluster.kubectl("wait", "esj/edit", "--for=condition=Running", "--timeout=30s")
    before = children(cluster, "edit")
    # Three edits the CRD takes: two the job's parser refuses (a spec over 96 KiB, by node selector
    # values no schema bounds; a cpu request above its limit, named as the spec's field), one the
    # API server's dry run of the worker Deployment refuses.
    bad_edits = [
        ({"affinity": TOO_BIG}, "must be at most 98304 (96 KiB)"),
        ({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}, "spec.workers.resources.requests.cpu: must be <= limits.cpu (1)"),
        CHILD_BAD[0],
    ]
    for round_, (workers, words) in enumerate(bad_edits):
        edited = copy.deepcopy(doc)
        edited["spec"]["workers"].update(workers, replicas=9)
        apply(cluster, edited)
        st = cluster.wait_for(partial(_reconciled, cluster, "edit", "False"))
        gen = job(cluster, "edit")["metadata"]["generation"]
        (cond,) = [c for c in st["conditions"] if c["type"] == "Reconciled"]
        assert (cond["reason"], cond["observedGeneration"]) == ("InvalidSpec", gen) and words in cond["message"], cond
        assert (st["phase"], st["reason"]) == ("Running", "InvalidSpec"), st
        assert st["message"].startswith(f"the edit of generation {gen} was refused") and words in st["message"], st["message"]
        assert st["observedGeneration"] == gen - 1, "the fleet runs the previous generation"
        assert {c["type"]: c["status"] for c in st["conditions"]}.get("Failed") is None
        events = cluster.wait_for(lambda r=round_: len(ev := [e for e in _events(cluster, "edit") if e["reason"] == "InvalidSpec"]) == r + 1 and ev)
        assert len(events) == round_ + 1 and all(e["type"] == "Warning" for e in events)
        assert [e for e in events if words in e["message"] and f"generation {gen}" in e["message"]]
        # Nothing of the edit reached the children: same objects, same resourceVersions.
        assert {k: v["metadata"]["resourceVersion"] for k, v in children(cluster, "edit").items()} == \
               {k: v["metadata"]["resourceVersion"] for k, v in before.items()}
        # The status keeps following the fleet (the timer uses the applied spec), and the refusal stays.
        standin.statuses[("default", "edit")] = running_status(iteration=10 + round_)
        st = cluster.wait_for(lambda r=round_: (s := status(cluster, "edit")).get("iteration") == 10 + r and s)
        assert (st["phase"], st["reason"], st["workers"]["desired"]) == ("Running", "InvalidSpec", 2 + round_), st
        # Fixing the edit applies it and clears the refusal.
        doc["spec"]["workers"]["replicas"] = 3 + round_
        apply(cluster, doc)
        st = cluster.wait_for(partial(_reconciled, cluster, "edit", "True"))
        assert (st["phase"], st["reason"]) == ("Running", "Running"), st
        assert st["observedGeneration"] == job(cluster, "edit")["metadata"]["generation"]
        cluster.wait_for(lambda r=round_: children(cluster, "edit")[("Deployment", "edit-workers-0")]["spec"]["replicas"] == 3 + r)
        before = children(cluster, "edit")
    assert operator.alive()


def test_a_job_that_never_ran_fails_for_an_invalid_spec(cluster: FakeKube, operator: OperatorProcess) -> None:
    for name, (workers, words) in (("never", ({"affinity": TOO_BIG}, "must be at most 98304 (96 KiB)")), ("never-affinity", PARSER_BAD)):
        apply(cluster, job_doc(name, workers={"replicas": 2, **workers}))
        st = cluster.wait_for(partial(_phase_set, cluster, name))
        assert (st["phase"], st["reason"]) == ("Failed", "InvalidSpec") and words in st["message"], st
        assert children(cluster, name) == {}
