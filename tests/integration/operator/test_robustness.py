"""Bad specs, a SIGKILLed operator, and 200 jobs: the operator converges and never exits."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
import yaml

from tests.fakekube.harness import FakeKube
from tests.integration.operator.opharness import JOBS, OperatorProcess, job_doc


def _all(cluster: FakeKube, path: str) -> list[dict[str, Any]]:
    return cluster.client.list(path, labelSelector="app.kubernetes.io/managed-by=esenas-operator")


def _statuses(cluster: FakeKube) -> dict[str, dict[str, Any]]:
    return {j["metadata"]["name"]: j.get("status") or {} for j in cluster.client.list(JOBS.format(ns="default"))}


#: Rejected by the CRD's schema through kubectl: (spec change, words the error must contain).
SCHEMA_BAD: list[tuple[dict[str, Any], str]] = [
    ({"es": {"fitnessShaping": "rank"}}, "spec.es.fitnessShaping"),
    ({"workers": {"replicas": -1}}, "spec.workers.replicas"),
    ({"workers": {"replicas": 10, "shardSize": 5000}}, "spec.workers.shardSize"),
    ({"environment": {"id": "not an id"}}, "spec.environment.id"),
    ({"backoffLimit": "three"}, "spec.backoffLimit"),
    ({"policy": {"hiddenLayers": [0]}}, "spec.policy.hiddenLayers"),
    # Cross-field CEL rules (x-kubernetes-validations), evaluated by the API server.
    ({"es": {"perturbations": 4, "topDirections": 8}}, "spec.es.topDirections must be <= perturbations"),
    ({"es": {"perturbations": 8, "perturbationsPerWorker": 2}}, "spec.es.perturbations and spec.es.perturbationsPerWorker are mutually exclusive"),
    ({"es": {"perturbationsPerWorker": 20}, "workers": {"replicas": 60_000}}, "must be <= 1000000 perturbations"),
    ({"policy": {"topology": "partition", "partitions": 2}, "controller": {"type": "none"}}, "spec.controller.type: searched topologies"),
    ({"policy": {"template": "mlp", "hiddenLayers": []}}, "template 'mlp' needs at least one hidden layer"),
    ({"policy": {"topology": "partition"}, "controller": {"type": "random"}}, "spec.policy.partitions is required"),
]

#: Pass the schema and its CEL rules but cannot run: (spec change, field, reason).
SEMANTIC_BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"environment": {"id": "Hopper-v9"}}, "spec.environment.id", "unknown environment 'Hopper-v9'"),
    ({"environment": {"id": "Hopper-v5"}, "policy": {"topology": "partition", "partitions": 34}}, "spec.policy.partitions", "must be <= the number of weights (33)"),
    ({"environment": {"id": "Hopper-v5"}, "policy": {"template": "mlp", "hiddenLayers": [4], "topology": "edges", "edges": 1000}, "controller": {"type": "random"}}, "spec.policy.edges", "must be <= the number of edges (56)"),
]


def test_bad_specs_are_rejected_with_clear_messages(cluster: FakeKube, operator: OperatorProcess) -> None:
    for i, (change, words) in enumerate(SCHEMA_BAD):
        doc = job_doc(f"schema-bad-{i}")
        doc["spec"].update(copy.deepcopy(change))
        if "environment" not in change:
            doc["spec"]["environment"] = {"id": "InvertedPendulum-v5"}
        done = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
        assert done.returncode != 0, f"{change} was accepted"
        assert words in done.stderr, done.stderr
    names = []
    for i, (change, _, _) in enumerate(SEMANTIC_BAD):
        doc = job_doc(f"semantic-bad-{i}")
        doc["spec"].update(copy.deepcopy(change))
        names.append(doc["metadata"]["name"])
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(job_doc("good")))
    statuses = cluster.wait_for(lambda: (s := _statuses(cluster)) and all(s.get(n, {}).get("phase") for n in [*names, "good"]) and s)
    for name, (_, field, reason) in zip(names, SEMANTIC_BAD, strict=True):
        st = statuses[name]
        assert st["phase"] == "Failed" and st["reason"] == "InvalidSpec", st
        (cond,) = [c for c in st["conditions"] if c["type"] == "Failed"]
        assert (cond["status"], cond["reason"]) == ("True", "InvalidSpec")
        assert cond["message"].startswith(f"{field}: ") and reason in cond["message"], cond["message"]
    assert statuses["good"]["phase"] == "Pending"
    # No children for invalid jobs, no retry storm, and the operator keeps running.
    assert {d["metadata"]["labels"]["esenas.dev/job"] for d in _all(cluster, "/apis/apps/v1/namespaces/default/deployments")} == {"good"}
    cluster.wait_for(lambda: "summary" in _statuses(cluster)["good"].get("workers", {}))  # its first status tick
    cluster.client.reset_stats()
    time.sleep(3)
    writes = cluster.client.stats()["writes"]
    job_writes = sum(n for verb in writes.values() for res, n in verb.items() if "esenasjobs" in res)
    assert job_writes == 0, writes
    events = [e for e in cluster.client.list("/api/v1/namespaces/default/events") if e.get("reason") == "InvalidSpec"]
    assert {e["involvedObject"]["name"] for e in events} == set(names)
    assert operator.alive() and operator.healthy()
    metrics = operator.metrics()
    assert 'esenas_operator_jobs{phase="Failed"} 3.0' in metrics
    assert "esenas_operator_reconcile_errors_total 3.0" in metrics


def _expected(name: str, shards: int) -> set[tuple[str, str]]:
    return {
        ("ConfigMap", f"{name}-spec"), ("Secret", f"{name}-token"), ("Service", f"{name}-aggregator"),
        ("NetworkPolicy", f"{name}-aggregator"), ("Deployment", f"{name}-aggregator"),
        *{("Deployment", f"{name}-workers-{i}") for i in range(shards)},
    }


def _inventory(cluster: FakeKube) -> dict[str, list[tuple[str, str]]]:
    """Every child in the namespace, by job, as a list so that duplicates would show."""
    out: dict[str, list[tuple[str, str]]] = {}
    for kind, path in (
        ("ConfigMap", "/api/v1/namespaces/default/configmaps"),
        ("Secret", "/api/v1/namespaces/default/secrets"),
        ("Service", "/api/v1/namespaces/default/services"),
        ("NetworkPolicy", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"),
        ("Deployment", "/apis/apps/v1/namespaces/default/deployments"),
    ):
        for obj in _all(cluster, path):
            out.setdefault(obj["metadata"]["labels"]["esenas.dev/job"], []).append((kind, obj["metadata"]["name"]))
    return out


def _converged(cluster: FakeKube, names: list[str], shards: int) -> bool:
    inv = _inventory(cluster)
    statuses = _statuses(cluster)
    return all(
        sorted(inv.get(n, [])) == sorted(_expected(n, shards))
        and statuses.get(n, {}).get("phase") == "Pending"
        and statuses[n].get("workers", {}).get("shards") == shards
        for n in names
    )


def test_operator_killed_mid_reconcile_converges_without_duplicates(cluster: FakeKube, operator: OperatorProcess) -> None:
    names = [f"kill-{i}" for i in range(30)]
    docs = [job_doc(n, workers={"replicas": 2500, "shardSize": 1000}) for n in names]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    # Kill as soon as the first children exist, while most jobs are half done.
    cluster.wait_for(lambda: len(_inventory(cluster)) >= 1, interval=0.02)
    operator.kill()
    before = _inventory(cluster)
    assert not all(sorted(before.get(n, [])) == sorted(_expected(n, 3)) for n in names), "killed too late to test anything"
    tokens = {s["metadata"]["name"]: s["data"]["token"] for s in _all(cluster, "/api/v1/namespaces/default/secrets")}
    operator.start()
    cluster.wait_for(lambda: _converged(cluster, names, 3), timeout=60, interval=0.5)
    after = {s["metadata"]["name"]: s["data"]["token"] for s in _all(cluster, "/api/v1/namespaces/default/secrets")}
    assert all(after[k] == v for k, v in tokens.items()), "a token was replaced"
    assert all(s["workers"]["desired"] == 2500 for n, s in _statuses(cluster).items())


@pytest.mark.timeout(300)
def test_200_jobs_are_reconciled(cluster: FakeKube, operator: OperatorProcess) -> None:
    names = [f"many-{i:03d}" for i in range(200)]
    start = time.monotonic()
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([job_doc(n, replicas=3) for n in names]), timeout=120)
    # A liveness bound, not a speed goal (bench/operator.py measures that): 2-core CI machines vary.
    cluster.wait_for(lambda: _converged(cluster, names, 1), timeout=450, interval=1.0)
    print(f"200 jobs: all children and status in {time.monotonic() - start:.1f} s")
    assert operator.alive()
