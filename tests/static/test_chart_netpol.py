"""The chart's jobNetworkPolicy.httpFrom: checked by values.schema.json at helm install time, and
turned by the operator into each job's NetworkPolicy rule for HTTP port 9090 (the real helm)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from esenas.spec import load_job
from esenas_operator import builders, netpol
from esenas_operator.settings import Settings

from tests.static.chart_tools import CHART, find, render, run, tool, values_file

JOB = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob",
       "metadata": {"name": "cheetah", "namespace": "rl", "uid": "0b7c-uid", "generation": 1},
       "spec": {"environment": {"id": "HalfCheetah-v5"}}}
PROMETHEUS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def _http_rule(tmp: Path, values: dict[str, Any]) -> dict[str, Any]:
    """The HTTP rule of a job's NetworkPolicy, built with the environment the chart gives the operator."""
    (dep,) = find(render(tmp, values), "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    env["POD_NAMESPACE"] = "esenas-system"  # the downward API's, which helm cannot render
    (policy,) = [o for o in builders.build_children(JOB, load_job(JOB), Settings.from_env(env), service_monitor=False)
                 if o["kind"] == "NetworkPolicy"]
    return dict(policy["spec"]["ingress"][1])


def test_http_port_follows_the_values(tmp_path: Path) -> None:
    assert "from" not in _http_rule(tmp_path, {}), "every pod by default"
    rule = _http_rule(tmp_path, {"jobNetworkPolicy": {"httpFrom": [PROMETHEUS]}})
    operator, *peers = rule["from"]
    assert peers == [PROMETHEUS]
    (dep,) = find(render(tmp_path, {}), "Deployment")
    assert operator["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"], "the operator pod itself"
    assert operator["namespaceSelector"] == {"matchLabels": {netpol.NAMESPACE_NAME_LABEL: "esenas-system"}}


@pytest.mark.parametrize(("peers", "message"), [
    ([{"podSelecter": {}}], "additional properties 'podSelecter' not allowed"),
    ([{}], "/jobNetworkPolicy/httpFrom/0"),
    ([{"namespaceSelector": {"matchLabels": {"bad key": "x"}}}], "invalid propertyName 'bad key'"),
    ([{"podSelector": {"matchExpressions": [{"key": "app", "operator": "Is"}]}}], "/jobNetworkPolicy/httpFrom/0/podSelector/matchExpressions/0/operator"),
    ([{"ipBlock": {"except": ["10.0.0.0/8"]}}], "missing property 'cidr'"),
])
def test_values_schema_refuses_a_bad_peer(tmp_path: Path, peers: list[Any], message: str) -> None:
    proc = run([tool("helm"), "template", "x", str(CHART), "-f", str(values_file(tmp_path, {"jobNetworkPolicy": {"httpFrom": peers}}))], check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
