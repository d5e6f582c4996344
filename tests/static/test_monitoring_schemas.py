"""The ServiceMonitor and PrometheusRule objects against the prometheus-operator CRD schemas.

kubernetes-validate knows no CRDs, so these kinds are checked with the validators generated from
prometheus-operator's own CRDs (npm @kubernetes-models/prometheus-operator, pinned in
tests/static/promop/package-lock.json and installed by scripts/fetch-tools.sh), run by node."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from esenas.spec import load_job
from esenas_operator import builders, monitoring
from esenas_operator.settings import Settings

from tests.static.chart_tools import ALL_ENABLED, REPO, find, render, run, tool

VALIDATOR = REPO / "tests" / "static" / "promop" / "validate.mjs"
MODULES = REPO / ".tools" / "promop" / "node_modules"


def validate(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One report per object ({kind, name, errors}); the validator's exit status must agree."""
    if not MODULES.is_dir():
        raise FileNotFoundError(f"{MODULES} missing: run scripts/fetch-tools.sh (make tools)")
    proc = run([tool("node"), str(VALIDATOR)], check=False, stdin=json.dumps(docs))
    assert proc.returncode in (0, 1), proc.stderr
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(reports) == len(docs), proc.stdout + proc.stderr
    assert (proc.returncode == 1) == any(r["errors"] for r in reports), proc.stdout
    return reports


def test_chart_monitoring_objects_match_the_upstream_schemas(tmp_path: Path) -> None:
    docs = render(tmp_path, ALL_ENABLED)
    objs = find(docs, "ServiceMonitor") + find(docs, "PrometheusRule")
    assert {o["kind"] for o in objs} == {"ServiceMonitor", "PrometheusRule"}
    reports = validate(objs)
    assert all(not r["errors"] for r in reports), reports


def test_operator_service_monitor_matches_the_upstream_schema() -> None:
    body = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob",
            "metadata": {"name": "cheetah", "namespace": "rl", "uid": "0b7c-uid", "generation": 1},
            "spec": {"environment": {"id": "HalfCheetah-v5"}}}
    children = builders.build_children(body, load_job(body), Settings(), service_monitor=True)
    monitors = [c for c in children if c["kind"] == "ServiceMonitor"]
    assert len(monitors) == 1
    (report,) = validate(monitors)
    assert report == {"kind": "ServiceMonitor", "name": "cheetah-aggregator", "errors": []}


def test_operator_service_monitor_with_chart_settings_matches_the_upstream_schema() -> None:
    body = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob",
            "metadata": {"name": "cheetah", "namespace": "rl", "uid": "0b7c-uid", "generation": 1},
            "spec": {"environment": {"id": "HalfCheetah-v5"}}}
    chart = monitoring.JobMonitoring(labels={"release": "kube-prometheus-stack", "example.com/team": "rl"}, interval="1m30s")
    (monitor,) = [c for c in builders.build_children(body, load_job(body), Settings(job_monitoring=chart), service_monitor=True)
                  if c["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (report,) = validate([monitor])
    assert report["errors"] == [], report


@pytest.mark.parametrize(("path", "value", "message"), [
    (("spec", "endpoints", 0, "interval"), "15 s", "/spec/endpoints/0/interval must match pattern"),
    (("spec", "endpoints", 0, "port"), 9090, "/spec/endpoints/0/port must be string"),
    (("spec", "endpoints"), {"port": "http"}, "/spec/endpoints must be array"),
])
def test_the_schema_check_can_fail(tmp_path: Path, path: tuple[Any, ...], value: Any, message: str) -> None:
    (monitor,) = find(render(tmp_path, ALL_ENABLED), "ServiceMonitor")
    broken = copy.deepcopy(monitor)
    target: Any = broken
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    (report,) = validate([broken])
    assert any(message in e for e in report["errors"]), report


def test_a_bad_rule_duration_is_refused(tmp_path: Path) -> None:
    (rule,) = find(render(tmp_path, ALL_ENABLED), "PrometheusRule")
    broken = copy.deepcopy(rule)
    broken["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    (report,) = validate([broken])
    assert any("/spec/groups/0/rules/0/for must match pattern" in e for e in report["errors"]), report
