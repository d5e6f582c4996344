"""Every pod the product starts passes the Pod Security Standards' `restricted` level with zero
violations: the operator's children for each example ESENASJob (one with a checkpoint PVC), and
the Helm chart's pods rendered by the real helm with default and monitoring-enabled values. The
checks are the fake API server's PodSecurity admission (tests/fakekube/podsecurity.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from esenas.spec import load_job
from esenas_operator import builders
from esenas_operator.settings import Settings

from tests.fakekube.podsecurity import check_pod
from tests.fakekube.psadmission import TEMPLATES
from tests.static.chart_tools import ALL_ENABLED, REPO, render

Obj = dict[str, Any]
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
KIND_TO_KEY = {"Deployment": ("apps", "deployments"), "ReplicaSet": ("apps", "replicasets"),
               "StatefulSet": ("apps", "statefulsets"), "DaemonSet": ("apps", "daemonsets"),
               "Job": ("batch", "jobs"), "CronJob": ("batch", "cronjobs"),
               "ReplicationController": ("", "replicationcontrollers"), "PodTemplate": ("", "podtemplates")}


def pod_templates(objs: list[Obj]) -> dict[str, tuple[Obj, Obj]]:
    """`Kind/name` -> (pod spec, pod metadata) of every pod or pod template among the objects."""
    found: dict[str, tuple[Obj, Obj]] = {}
    for obj in objs:
        key = f'{obj["kind"]}/{obj["metadata"]["name"]}'
        if obj["kind"] == "Pod":
            found[key] = (obj["spec"], obj["metadata"])
        elif obj["kind"] in KIND_TO_KEY:
            node: Any = obj
            for part in TEMPLATES[KIND_TO_KEY[obj["kind"]]]:
                node = node[part]
            found[key] = (node["spec"], node.get("metadata") or {})
    return found


def violations(objs: list[Obj]) -> dict[str, list[str]]:
    return {k: [str(v) for v in check_pod(spec, "restricted", meta)]
            for k, (spec, meta) in pod_templates(objs).items()}


def operator_children(doc: Obj) -> list[Obj]:
    body = copy.deepcopy(doc)
    body["metadata"].setdefault("namespace", "rl")
    body["metadata"]["uid"] = "0b7c-uid"
    return builders.build_children(body, load_job(body), Settings(), service_monitor=True)


def with_checkpoint_claim(doc: Obj) -> Obj:
    out = copy.deepcopy(doc)
    out["metadata"]["name"] = f'{doc["metadata"]["name"]}-pvc'
    out["spec"].setdefault("aggregator", {})["checkpoint"] = {"everyIterations": 5, "storageSize": "1Gi"}
    return out


JOBS = {p.stem: yaml.safe_load(p.read_text()) for p in EXAMPLES}
JOBS["inverted-pendulum-checkpoint-pvc"] = with_checkpoint_claim(JOBS["inverted-pendulum"])


@pytest.mark.parametrize("doc", JOBS.values(), ids=JOBS.keys())
def test_operator_pods_pass_restricted(doc: Obj) -> None:
    found = violations(operator_children(doc))
    assert {k.split("/")[0] for k in found} == {"Deployment"} and len(found) >= 2, found.keys()
    assert all(v == [] for v in found.values()), found


def test_checkpoint_claim_case_mounts_a_pvc() -> None:
    """The PVC case really carries a persistentVolumeClaim volume (an allowed restricted type)."""
    children = operator_children(JOBS["inverted-pendulum-checkpoint-pvc"])
    specs = [spec for spec, _ in pod_templates(children).values()]
    assert any("persistentVolumeClaim" in v for s in specs for v in s.get("volumes") or ())
    assert any(o["kind"] == "PersistentVolumeClaim" for o in children)


VALUES = {"default": {}, "monitoring-enabled": ALL_ENABLED}


@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_chart_pods_pass_restricted(tmp_path: Path, values: Obj) -> None:
    found = violations(render(tmp_path, values))
    assert found, "the chart renders at least the operator's Deployment"
    assert all(v == [] for v in found.values()), found


def test_a_broken_template_is_caught() -> None:
    """The check sees what a regression in the builder would look like."""
    children = operator_children(JOBS["inverted-pendulum"])
    deploy = next(o for o in children if o["kind"] == "Deployment")
    deploy["spec"]["template"]["spec"]["containers"][0]["securityContext"].pop("allowPrivilegeEscalation")
    assert any(v for v in violations(children).values())
