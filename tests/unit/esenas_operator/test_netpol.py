"""Who may reach a job's HTTP port: the chart's jobNetworkPolicy.httpFrom, read once at start (netpol.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from esenas.spec import load_job
from esenas_operator import builders, settings
from esenas_operator.netpol import HttpAccess

JOB: dict[str, Any] = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "j", "namespace": "rl", "uid": "u"},
                       "spec": {"environment": {"id": "Hopper-v5"}, "workers": {"replicas": 300}, "relays": {"workersPerRelay": 100}}}
MONITORING = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
               "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["prometheus"]}]}},
              {"ipBlock": {"cidr": "10.8.0.0/16", "except": ["10.8.1.0/24"]}}]
OWN = {"app.kubernetes.io/name": "esenas", "app.kubernetes.io/instance": "x", "app.kubernetes.io/component": "operator"}


def _env(peers: Any, **extra: str) -> dict[str, str]:
    return {"ESENAS_JOB_HTTP_FROM": peers if isinstance(peers, str) else json.dumps(peers),
            "POD_NAMESPACE": "esenas-system", "ESENAS_OPERATOR_POD_LABELS": json.dumps(OWN), **extra}


def _http_rules(env: dict[str, str]) -> list[dict[str, Any]]:
    s = settings.read([], env)
    policies = [o for o in builders.build_children(JOB, load_job(JOB), s, service_monitor=False) if o["kind"] == "NetworkPolicy"]
    assert sorted(p["metadata"]["name"] for p in policies) == ["j-aggregator", "j-relays"]
    return [p["spec"]["ingress"][1] for p in policies]


def test_by_default_every_pod_reaches_the_http_port() -> None:
    for env in ({}, {"ESENAS_JOB_HTTP_FROM": ""}, {"ESENAS_JOB_HTTP_FROM": "[]"}):
        assert HttpAccess.from_env(env) == HttpAccess()
        for rule in _http_rules(env):
            assert rule == {"ports": [{"protocol": "TCP", "port": 9090}]}


def test_set_only_those_peers_and_the_operator_reach_it() -> None:
    operator = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "esenas-system"}}, "podSelector": {"matchLabels": OWN}}
    for rule in _http_rules(_env(MONITORING)):  # the aggregator's and the relays'
        assert rule == {"ports": [{"protocol": "TCP", "port": 9090}], "from": [operator, *MONITORING]}


@pytest.mark.parametrize(("peers", "message"), [
    ("[{", "ESENAS_JOB_HTTP_FROM (the chart's jobNetworkPolicy.httpFrom): not JSON"),
    ({"podSelector": {}}, "the list: must be a list, got object"),
    ([{"podSelecter": {}}], "[0].podSelecter: unknown field"),
    ([{}], "[0]: must set podSelector, namespaceSelector or ipBlock"),
    ([{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}], "[0]: ipBlock cannot be set with podSelector or namespaceSelector"),
    ([{"ipBlock": {"cidr": "10.0.0.0/33"}}], "[0].ipBlock.cidr: '10.0.0.0/33' is not a CIDR"),
    ([{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}], "[0].ipBlock.except[0]: 11.0.0.0/16 is not inside cidr 10.0.0.0/8"),
    ([{"ipBlock": {}}], "[0].ipBlock.cidr: required"),
    ([{"namespaceSelector": {"matchLabels": {"bad key": "x"}}}], "[0].namespaceSelector.matchLabels: 'bad key' is not a Kubernetes label key"),
    ([{"podSelector": {"matchLabels": {"app": "not a value"}}}], "[0].podSelector.matchLabels.app: 'not a value' is not a Kubernetes label value"),
    ([{"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}],
     "[0].podSelector.matchExpressions[0].values: required (at least one) with operator In"),
    ([{"podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["a"]}]}}],
     "[0].podSelector.matchExpressions[0].values: must be empty with operator Exists"),
    ([{"podSelector": {"matchExpressions": [{"key": "app", "operator": "Is"}]}}], "[0].podSelector.matchExpressions[0].operator: must be one of"),
])
def test_a_bad_value_stops_the_operator_at_start_naming_the_field(peers: Any, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="ESENAS_JOB_HTTP_FROM") as err:
        HttpAccess.from_env(_env(peers))
    assert message in str(err.value), str(err.value)
    with pytest.raises(SystemExit):
        settings.read([], _env(peers))
    assert message in capsys.readouterr().err


def test_peers_need_the_operators_own_namespace_and_labels() -> None:
    for drop in ("POD_NAMESPACE", "ESENAS_OPERATOR_POD_LABELS"):
        env = {k: v for k, v in _env(MONITORING).items() if k != drop}
        with pytest.raises(ValueError, match="could not read its jobs' /status"):
            HttpAccess.from_env(env)
    assert HttpAccess.from_env({"ESENAS_JOB_HTTP_FROM": "[]"}) == HttpAccess(), "not needed when every pod may reach it"
