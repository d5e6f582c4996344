"""The Helm chart: helm lint --strict, kubernetes-validate for 1.29/1.33/1.37, secure defaults,
RBAC in both watch modes, values documentation and schema, and images that match the Dockerfiles."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.static.chart_tools import (
    ALL_ENABLED,
    CHART,
    CONTRACTS,
    MONITORING_KINDS,
    NAMESPACED,
    REPO,
    find,
    render,
    run,
    template,
    tool,
    values_file,
    venv_tool,
)

#: Every optional template branch filled in, to check the pod-level plumbing renders valid objects.
EVERYTHING: dict[str, Any] = {
    **ALL_ENABLED,
    "imagePullSecrets": [{"name": "regcred"}],
    "priorityClassName": "ml-batch",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
    "podAnnotations": {"example.com/team": "rl"},
    "podLabels": {"team": "rl"},
    "serviceAccount": {"annotations": {"iam.example.com/role": "esenas"}},
    "operator": {"statusInterval": 2.5, "extraArgs": ["--verbose"], "extraEnv": [{"name": "TZ", "value": "UTC"}]},
    "metrics": {"service": {"annotations": {"prometheus.io/scrape": "true"}}},
    "grafanaDashboard": {"enabled": True, "namespace": "monitoring", "annotations": {"grafana_folder": "ES-ENAS"}},
}
VALUE_SETS = {"default": {}, "all-enabled": ALL_ENABLED, "namespaced": {**ALL_ENABLED, **NAMESPACED},
              "everything": EVERYTHING}
K8S_VERSIONS = ("1.29", "1.33", "1.37")


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_helm_lint_strict(tmp_path: Path, values: dict[str, Any]) -> None:
    args = [tool("helm"), "lint", "--strict", str(CHART)]
    if values:
        args += ["-f", str(values_file(tmp_path, values))]
    out = run(args).stdout
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_template_passes_kubernetes_validate(tmp_path: Path, values: dict[str, Any], version: str) -> None:
    docs = [d for d in yaml.safe_load_all(template(tmp_path, values, "--include-crds")) if d]
    # ServiceMonitor/PrometheusRule come from the prometheus-operator CRDs, which kubernetes-validate
    # does not know; test_monitoring.py checks them with promtool and against the metrics Service.
    core = [d for d in docs if d["kind"] not in MONITORING_KINDS]
    assert {d["kind"] for d in core} >= {"CustomResourceDefinition", "Deployment", "ClusterRole", "Service"}
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(core))
    proc = run([venv_tool("kubernetes-validate"), "--strict", "-k", version, str(path)], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Couldn't find schema" not in proc.stdout + proc.stderr


def test_kubernetes_validate_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The validator can fail: a misspelt Deployment field is an error under --strict."""
    (dep,) = find(render(tmp_path), "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(dep))
    proc = run([venv_tool("kubernetes-validate"), "--strict", "-k", "1.33", str(path)], check=False)
    assert proc.returncode != 0


def test_operator_deployment_is_single_recreate_and_restricted(tmp_path: Path) -> None:
    (dep,) = find(render(tmp_path), "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}  # docs/contracts.md
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    psc, csc = pod["securityContext"], c["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"] == {"drop": ["ALL"]}
    # A writable /tmp exists because the root filesystem is read-only.
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    # The images' USER is the uid the chart declares, so runAsNonRoot can verify it.
    for dockerfile in ("operator/Dockerfile", "worker_image/Dockerfile", "aggregator/Dockerfile"):
        user = re.search(r"^USER (\d+):(\d+)$", (REPO / dockerfile).read_text(), re.M)
        assert user is not None, f"{dockerfile}: no numeric USER"
        assert (int(user[1]), int(user[2])) == (psc["runAsUser"], psc["runAsGroup"])


def test_default_images_match_dockerfiles_and_operator_defaults(tmp_path: Path) -> None:
    from esenas_operator.settings import Settings

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = chart["appVersion"]
    (dep,) = find(render(tmp_path), "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    images = {
        "operator": c["image"],
        "worker": env["ESENAS_WORKER_IMAGE"],
        "aggregator": env["ESENAS_AGGREGATOR_IMAGE"],
    }
    entrypoints = {"operator": '["esenas-operator"]', "worker": '["esenas-worker"]',
                   "aggregator": '["esenas-aggregator"]'}
    folders = {"operator": "operator", "worker": "worker_image", "aggregator": "aggregator"}
    for name, image in images.items():
        assert image == f"ghcr.io/esenas-fleet/{name}:{version}"
        text = (REPO / folders[name] / "Dockerfile").read_text()
        assert f"-t {image} ." in text, f"{folders[name]}/Dockerfile builds another tag than {image}"
        assert f'org.opencontainers.image.version="{version}"' in text
        assert f"ENTRYPOINT {entrypoints[name]}" in text
        assert f"requirements/{name}.txt" in text
        assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", text, re.M)
    # Without the chart's env the operator falls back to the same images.
    assert Settings().worker_image == images["worker"]
    assert Settings().aggregator_image == images["aggregator"]
    assert env["ESENAS_IMAGE_PULL_POLICY"] == "IfNotPresent"
    assert "ESENAS_WORKER_IMAGE" in CONTRACTS.read_text()


def _rules(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
            for r in rule["resources"] for v in rule["verbs"]}


def test_rbac_cluster_wide(tmp_path: Path) -> None:
    docs = render(tmp_path)
    (cr,) = find(docs, "ClusterRole")
    assert not find(docs, "Role")
    granted = _rules(cr)
    assert ("esenas.dev", "esenasjobs", "watch") in granted
    assert ("esenas.dev", "esenasjobs/status", "patch") in granted
    # blockOwnerDeletion on every child's ownerReference needs update of the job's finalizers
    # (OwnerReferencesPermissionEnforcement, e.g. OpenShift); nothing else of them.
    assert {v for _, r, v in granted if r == "esenasjobs/finalizers"} == {"update"}
    assert not find(docs, "RoleBinding")
    (dep,) = find(docs, "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if a.startswith("--namespace")]  # no --namespace: every namespace
    assert {"--metrics-port=8080", "--liveness-port=8081"} <= set(args)


def test_rbac_namespaced_has_a_role_per_namespace_and_no_cluster_wide_job_access(tmp_path: Path) -> None:
    docs = render(tmp_path, NAMESPACED)
    (cr,) = find(docs, "ClusterRole")
    cluster = _rules(cr)
    assert {r for _, r, _ in cluster} == {"customresourcedefinitions", "namespaces"}
    assert {v for _, _, v in cluster} <= {"get", "list", "watch"}
    roles = find(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["ml", "research"]
    for role in roles:
        assert {v for _, r, v in _rules(role) if r == "esenasjobs/finalizers"} == {"update"}
    bindings = find(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["ml", "research"]
    for b in bindings:
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "esenas", "namespace": "esenas-system"}]
    (dep,) = find(docs, "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=ml", "--namespace=research"]


def test_rbac_is_the_operators_list_and_covers_every_child_in_the_contract(tmp_path: Path) -> None:
    (cr,) = find(render(tmp_path), "ClusterRole")
    granted = _rules(cr)
    # The children named in docs/contracts.md, by kind.
    table = CONTRACTS.read_text().split("## Kubernetes objects made by the operator")[1].split("\n## ")[0]
    kinds = set(re.findall(r"^\| (\w+) \|", table, re.M)) - {"object"}
    resource = {"ConfigMap": ("", "configmaps"), "Secret": ("", "secrets"), "Deployment": ("apps", "deployments"),
                "Service": ("", "services"), "PVC": ("", "persistentvolumeclaims"),
                "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
                "ServiceMonitor": ("monitoring.coreos.com", "servicemonitors"),
                "workers": ("apps", "deployments")}
    assert kinds <= set(resource), f"a new child kind in contracts.md needs an RBAC rule: {kinds - set(resource)}"
    # The Secret and the claim are POSTed once; every other child is server-side applied, a PATCH
    # that creates it (docs/contracts.md says which): each kind needs exactly that one verb.
    created_once = {"Secret", "PVC"}
    for kind in kinds:
        group, res = resource[kind]
        verb = "create" if kind in created_once else "patch"
        assert (group, res, verb) in granted, f"{kind}: the operator may not {verb} {res}"
        unused = {"get", "create"} - {verb} if kind not in created_once else {"get", "patch"}
        assert not {(group, res, v) for v in unused} & granted, f"{kind}: {unused} of {res} granted but never used"
    # Never a watch on pods (the operator reads only the aggregator pod, by label), no wildcards,
    # no escalation.
    assert not any(r == "*" or g == "*" or v in {"*", "escalate", "bind", "impersonate"} for g, r, v in granted)
    assert {v for g, r, v in granted if r == "pods"} <= {"list"}
    # The chart's rules are exactly the operator's own list (operator/rbac-rules.yaml).
    own = yaml.safe_load((REPO / "operator" / "rbac-rules.yaml").read_text())
    assert own == yaml.safe_load((CHART / "files" / "rbac-rules.yaml").read_text())


def test_namespaced_watch_without_namespaces_fails_with_a_clear_error(tmp_path: Path) -> None:
    f = values_file(tmp_path, {"watch": {"clusterWide": False}})
    proc = run([tool("helm"), "template", "x", str(CHART), "-f", str(f)], check=False)
    assert proc.returncode != 0
    assert "/watch/namespaces" in proc.stderr and "minItems" in proc.stderr


@pytest.mark.parametrize(("values", "message"), [
    ({"watch": {"clusterWide": "yes"}}, "/watch/clusterWide"),
    ({"metrics": {"port": 70000}}, "/metrics/port"),
    ({"prometheusRule": {"workerShortfallRatio": 2}}, "/prometheusRule/workerShortfallRatio"),
    ({"serviceMonitor": {"interval": "soon"}}, "/serviceMonitor/interval"),
    ({"replicas": 2}, "replicas"),
    ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),  # the API server would refuse the pod
    ({"resources": {"limit": {"memory": "1Gi"}}}, "additional properties 'limit' not allowed"),  # a typo, silently unused
])
def test_values_schema_rejects_bad_values(tmp_path: Path, values: dict[str, Any], message: str) -> None:
    proc = run([tool("helm"), "lint", "--strict", str(CHART), "-f", str(values_file(tmp_path, values))], check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def _key_paths(lines: list[str]) -> list[tuple[int, tuple[str, ...]]]:
    """(line number, dotted key path) of every mapping key in a block-style YAML file."""
    stack: list[tuple[int, str]] = []
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"^( *)([A-Za-z_][\w.-]*):", line)
        if not m:
            continue
        indent = len(m[1])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m[2]))
        out.append((i, tuple(k for _, k in stack)))
    return out


def test_every_values_key_is_commented_and_in_the_schema() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    schema = json.loads((CHART / "values.schema.json").read_text())
    for i, path in _key_paths(lines):
        assert lines[i - 1].lstrip().startswith("#"), f"values.yaml:{i + 1} {'.'.join(path)} has no comment"
        node: dict[str, Any] | None = schema
        for key in path:
            if node is None or "properties" not in node:
                node = None  # inside a free-form object (resources, securityContext, ...)
                break
            assert key in node["properties"], f"values.schema.json does not declare {'.'.join(path)}"
            node = node["properties"][key]
        if node is not None:
            assert node.get("description"), f"values.schema.json: {'.'.join(path)} has no description"


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_operator_accepts_the_chart_arguments(tmp_path: Path, values: dict[str, Any]) -> None:
    """The real esenas-operator argument parser takes every flag the chart passes."""
    from esenas_operator.main import parse_args

    (dep,) = find(render(tmp_path, values), "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    args = parse_args(c["args"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert (args.metrics_port, args.liveness_port) == (ports["metrics"], ports["health"])
    assert args.namespace == values.get("watch", {}).get("namespaces", [])
    assert args.status_interval == values.get("operator", {}).get("statusInterval", 10)
