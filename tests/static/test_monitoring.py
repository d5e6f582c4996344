"""Observability package: promtool on the PrometheusRule's alerts (severity and runbook links from
values), both ServiceMonitors (the chart's and the operator's per-job one) as the values set them, and
the Grafana dashboard's structure, units, rate queries and metric names (docs/contracts.md)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from esenas.spec import load_job
from esenas_operator import builders, names
from esenas_operator.settings import Settings

from tests.static.chart_tools import (
    ALL_ENABLED,
    CHART,
    REPO,
    contract_metric_names,
    find,
    render,
    rendered_rules,
    run,
    tool,
    values_file,
)

HERE = Path(__file__).resolve().parent
DASHBOARD = CHART / "dashboards" / "esenas.json"
OPERATIONS = REPO / "docs" / "operations.md"
ALERTS = ("ESENASJobStalled", "ESENASWorkerShortfall", "ESENASAggregatorDown",
          "ESENASResultsStaleOrRejected", "ESENASBestNotReproduced", "ESENASOperatorReconcileErrors")
# PromQL words that look like metric names but are not.
_PROMQL_WORDS = {"sum", "by", "rate", "max", "and", "on", "or", "unless", "offset", "changes",
                 "histogram_quantile", "le", "up", "time", "count", "min"}


def _metric_names(expr: str) -> set[str]:
    """Metric names used in a PromQL expression (label matchers and strings stripped)."""
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r'"[^"]*"', "", expr)
    return {w for w in re.findall(r"\b(esenas_[a-z0-9_]+)", expr)}


def _known(name: str, contract: set[str]) -> bool:
    """A contract name, or a histogram's series (_bucket/_sum/_count) of one."""
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return name in contract or (base != name and base in contract)


def _write_rules(tmp: Path) -> Path:
    rules = tmp / "rules.yaml"
    rules.write_text(yaml.safe_dump(rendered_rules(tmp)))
    shutil.copy(HERE / "alerts_test.yaml", tmp / "alerts_test.yaml")
    return rules


def test_promtool_check_rules(tmp_path: Path) -> None:
    rules = _write_rules(tmp_path)
    out = run([tool("promtool"), "check", "rules", str(rules)]).stdout
    assert f"SUCCESS: {len(ALERTS)} rules found" in out


def test_promtool_unit_tests_fire_and_silence_every_alert(tmp_path: Path) -> None:
    _write_rules(tmp_path)
    run([tool("promtool"), "test", "rules", "alerts_test.yaml"], cwd=tmp_path)
    # Every alert has a case where it fires and one where it stays quiet.
    tests = yaml.safe_load((HERE / "alerts_test.yaml").read_text())["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == set(ALERTS) and quiet == set(ALERTS)


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A rule file whose stall threshold is off makes the unit tests fail: they check the rules."""
    _write_rules(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules.read_text().replace("[15m]", "[45m]").replace("offset 15m", "offset 45m"))
    proc = run([tool("promtool"), "test", "rules", "alerts_test.yaml"], cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "ESENASJobStalled" in proc.stdout + proc.stderr


def test_alerts_use_only_contract_metrics(tmp_path: Path) -> None:
    contract = contract_metric_names()
    rules = [r for g in rendered_rules(tmp_path)["groups"] for r in g["rules"]]
    assert [r["alert"] for r in rules] == list(ALERTS)
    for rule in rules:
        unknown = {n for n in _metric_names(rule["expr"]) if not _known(n, contract)}
        assert not unknown, f"{rule['alert']}: {unknown} not in docs/contracts.md"
        assert rule["labels"]["severity"] and rule["annotations"]["summary"]


def _rules(tmp: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    (rule,) = find(render(tmp, {"prometheusRule": {"enabled": True, **values}}), "PrometheusRule")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def test_every_alert_takes_its_severity_from_values(tmp_path: Path) -> None:
    assert {r["alert"]: r["labels"]["severity"] for r in _rules(tmp_path, {})} == dict.fromkeys(ALERTS, "warning")
    rules = _rules(tmp_path, {"severity": "ticket", "severityOverrides": {"ESENASAggregatorDown": "page"}})
    assert {r["alert"]: r["labels"]["severity"] for r in rules} == {
        **dict.fromkeys(ALERTS, "ticket"), "ESENASAggregatorDown": "page"}


def _anchors(markdown: str) -> list[str]:
    """GitHub's anchors of a page's headings (code blocks skipped): lower case, punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    return [re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#{1,6} (.+)$", text, re.M)]


def test_every_alert_links_its_runbook_section(tmp_path: Path) -> None:
    anchors = _anchors(OPERATIONS.read_text())
    runbook = anchors.index("alerts-runbook")
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    page = f"{chart['home']}/blob/v{chart['appVersion']}/docs/operations.md"
    for rule in _rules(tmp_path, {}):
        url, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert url == page, rule["annotations"]
        # The section exists, under "Alerts runbook", and is the alert's own.
        assert anchor in anchors[runbook + 1:], f"{rule['alert']}: docs/operations.md has no #{anchor}"
        assert anchor == rule["alert"].lower()
    custom = _rules(tmp_path, {"runbookBaseUrl": "https://wiki.example.com/esenas/runbook"})
    assert {r["annotations"]["runbook_url"] for r in custom} == {
        f"https://wiki.example.com/esenas/runbook#{a.lower()}" for a in ALERTS}


def test_anchor_check_finds_only_real_headings() -> None:
    md = "# Ops\n\n```bash\n# esenasjobstalled\n```\n\n## Alerts runbook\n\n### ESENASJobStalled\n"
    assert _anchors(md) == ["ops", "alerts-runbook", "esenasjobstalled"]


@pytest.mark.parametrize(("values", "message"), [
    ({"jobServiceMonitor": {"interval": "15 s"}}, "/jobServiceMonitor/interval"),
    ({"jobServiceMonitor": {"enabled": "no"}}, "/jobServiceMonitor/enabled"),
    ({"jobServiceMonitor": {"labels": {"bad key": "x"}}}, "invalid propertyName 'bad key'"),
    ({"jobServiceMonitor": {"labels": {"release": "not a value"}}}, "/jobServiceMonitor/labels/release"),
    ({"jobServiceMonitor": {"scrapeTimeout": "5s"}}, "scrapeTimeout"),
    ({"serviceMonitor": {"labels": {"release": 3}}}, "/serviceMonitor/labels/release"),
    ({"prometheusRule": {"severityOverrides": {"ESENASNoSuchAlert": "page"}}}, "invalid propertyName 'ESENASNoSuchAlert'"),
    ({"prometheusRule": {"severityOverrides": {"ESENASAggregatorDown": ""}}}, "/prometheusRule/severityOverrides"),
    ({"prometheusRule": {"runbookBaseUrl": "docs/operations.md"}}, "/prometheusRule/runbookBaseUrl"),
])
def test_values_schema_checks_the_monitoring_values(tmp_path: Path, values: dict[str, Any], message: str) -> None:
    proc = run([tool("helm"), "template", "x", str(CHART), "-f", str(values_file(tmp_path, values))], check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


JOB = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob",
       "metadata": {"name": "cheetah", "namespace": "rl", "uid": "0b7c-uid", "generation": 1},
       "spec": {"environment": {"id": "HalfCheetah-v5"}}}


def _job_monitors(tmp: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The operator's ServiceMonitors for one job, built with the environment the chart gives it."""
    (dep,) = find(render(tmp, values), "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    children = builders.build_children(JOB, load_job(JOB), Settings.from_env(env), service_monitor=True)
    return [o for o in children if o["kind"] == "ServiceMonitor"]


def test_job_service_monitor_follows_the_values(tmp_path: Path) -> None:
    (default,) = _job_monitors(tmp_path, {})
    assert default["metadata"]["labels"] == names.labels("cheetah", "aggregator")
    assert default["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    (sm,) = _job_monitors(tmp_path, {
        "serviceMonitor": {"labels": {"release": "kps", "team": "ml"}},
        # The job's own labels win on a shared key; the operator's labels win over both.
        "jobServiceMonitor": {"interval": "45s", "labels": {"team": "rl", "esenas.dev/job": "other"}},
    })
    assert sm["metadata"]["labels"] == {**names.labels("cheetah", "aggregator"), "release": "kps", "team": "rl"}
    assert sm["spec"]["endpoints"][0]["interval"] == "45s"
    assert sm["spec"]["selector"] == default["spec"]["selector"]


def test_job_service_monitor_can_be_switched_off(tmp_path: Path) -> None:
    assert _job_monitors(tmp_path, {"jobServiceMonitor": {"enabled": False}}) == []
    # Still off when the chart's own ServiceMonitor is on: the two switches are separate.
    assert _job_monitors(tmp_path, {**ALL_ENABLED, "jobServiceMonitor": {"enabled": False}}) == []
    assert len(_job_monitors(tmp_path, {"serviceMonitor": {"enabled": False}})) == 1


def test_chart_service_monitor_follows_the_values(tmp_path: Path) -> None:
    docs = render(tmp_path, {**ALL_ENABLED, "serviceMonitor": {"enabled": True, "interval": "1m",
                                                              "scrapeTimeout": "20s", "labels": {"release": "kps"}}})
    (sm,) = find(docs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kps"
    (endpoint,) = sm["spec"]["endpoints"]
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("1m", "20s")
    assert not find(render(tmp_path, {**ALL_ENABLED, "serviceMonitor": {"enabled": False}}), "ServiceMonitor")


def test_chart_readme_documents_the_monitoring_values() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    keys = [f"jobServiceMonitor.{k}" for k in values["jobServiceMonitor"]]
    keys += ["serviceMonitor.labels", "prometheusRule.severity", "prometheusRule.severityOverrides",
             "prometheusRule.runbookBaseUrl"]
    for key in keys:
        assert f"`{key}`" in readme, f"helm/esenas/README.md does not document {key}"


def test_service_monitor_scrapes_the_metrics_service(tmp_path: Path) -> None:
    docs = render(tmp_path, ALL_ENABLED)
    (sm,) = find(docs, "ServiceMonitor")
    (svc,) = find(docs, "Service")
    labels = svc["metadata"]["labels"]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert all(labels.get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [svc["metadata"]["namespace"]]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    (dep,) = find(docs, "Deployment")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())


def test_optional_pieces_are_off_by_default(tmp_path: Path) -> None:
    kinds = {d["kind"] for d in render(tmp_path)}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    assert not [d for d in render(tmp_path) if d["kind"] == "ConfigMap"]


def _panels() -> list[dict[str, Any]]:
    dash = json.loads(DASHBOARD.read_text())
    return [p for p in dash["panels"] if p["type"] != "row"]


def test_dashboard_configmap_carries_the_dashboard(tmp_path: Path) -> None:
    (cm,) = find(render(tmp_path, ALL_ENABLED), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["esenas.json"]) == json.loads(DASHBOARD.read_text())


def test_dashboard_variables_and_queries() -> None:
    dash = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert "esenas_namespace" in variables["namespace"]["definition"]
    assert "esenas_job" in variables["job"]["definition"]
    assert variables["datasource"]["query"] == "prometheus"
    contract = contract_metric_names()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in _panels():
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            expr = target["expr"]
            names = _metric_names(expr)
            assert names, f"panel {panel['title']!r}: query {expr!r} reads no esenas metric"
            unknown = {n for n in names if not _known(n, contract)}
            assert not unknown, f"panel {panel['title']!r}: {unknown} not in docs/contracts.md"
            # Job metrics follow the namespace/job variables; operator-wide ones have no job label.
            if not all(n.startswith("esenas_operator_") and n != "esenas_operator_job_workers" for n in names):
                assert '$namespace' in expr and '$job' in expr, f"{panel['title']!r}: {expr!r} ignores the variables"


def test_dashboard_has_the_required_panels() -> None:
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in _panels()}
    by_title = {t.lower(): e for t, e in exprs.items()}

    def panel(*words: str) -> str:
        hits = [e for t, e in by_title.items() if all(w in t for w in words)]
        assert hits, f"no panel titled with {words}"
        return hits[0]

    assert "esenas_iteration" in panel("reward", "iteration") and "esenas_reward_mean" in panel("reward", "iteration")
    assert "esenas_env_steps_total" in panel("reward", "env steps") and "esenas_reward_best" in panel("reward", "env steps")
    assert "rate(esenas_env_steps_total" in panel("env steps / s")
    assert "rate(esenas_rollouts_total" in panel("rollouts / s")
    w = panel("workers connected vs desired")
    assert "esenas_workers_connected" in w and 'state="desired"' in w
    d = panel("iteration duration")
    assert "histogram_quantile(0.5," in d and "histogram_quantile(0.95," in d
    r = panel("stale", "rejected")
    assert all(m in r for m in ("esenas_results_stale_total", "esenas_results_reissued_total",
                                "esenas_results_rejected_total"))
    t = panel("topology size", "compression")
    assert "esenas_topology_size" in t and "esenas_topology_compression_ratio" in t
    assert "esenas_controller_entropy_nats" in panel("controller entropy")
    o = panel("operator reconciles", "errors")
    assert "esenas_operator_reconciles_total" in o and "esenas_operator_reconcile_errors_total" in o


# Panels whose values may be negative: rewards (a job may shift or penalise them).
_SIGNED = {"Reward vs iteration ($job)", "Reward vs env steps ($job)", "Rewards over time"}
_RATE = ("rate(", "increase(", "irate(")


def _negative_capable(expr: str, *, counter_as_axis: bool = False) -> list[str]:
    """Why a query could draw a negative rate: a counter read other than through rate()/increase()
    (its raw value jumps back to 0 on a restart), delta()/deriv() (negative on any reset or fall), or
    a difference of gauges without clamp_min(..., 0). counter_as_axis: a trend panel's x field,
    where the raw counter is the axis."""
    problems = []
    bare = re.sub(r'"[^"]*"', '""', expr)
    for m in re.finditer(r"\b(esenas_\w+_(?:total|bucket|count|sum))\b", bare):
        if not bare[: m.start()].rstrip().endswith(_RATE) and not counter_as_axis:
            problems.append(f"counter {m[1]} outside rate()/increase()")
    problems += [f"{m[1]}() can go negative" for m in re.finditer(r"\b(delta|idelta|deriv|predict_linear)\s*\(", bare)]
    # A binary minus (label matchers, strings and range selectors removed) needs clamp_min.
    arith = re.sub(r"\[[^\]]*\]|\{[^}]*\}", "", bare)
    if re.search(r"[\w)\s]-\s*[\w(]", arith) and "clamp_min(" not in arith:
        problems.append("a difference without clamp_min(..., 0)")
    return problems


def test_dashboard_rates_cannot_go_negative() -> None:
    for panel in _panels():
        for i, target in enumerate(panel["targets"]):
            problems = _negative_capable(target["expr"], counter_as_axis=panel["type"] == "trend" and i == 0)
            assert not problems, f"{panel['title']!r}: {target['expr']!r}: {problems}"
        if panel["type"] == "timeseries" and panel["title"] not in _SIGNED:
            # Also no axis drawn below 0 around an all-zero series.
            assert panel["fieldConfig"]["defaults"].get("min") == 0, f"{panel['title']!r} has no min 0"


@pytest.mark.parametrize(("expr", "problem"), [
    ('esenas_env_steps_total{esenas_job=~"$job"}', "counter esenas_env_steps_total outside rate()"),
    ("sum(esenas_operator_reconciles_total)", "counter esenas_operator_reconciles_total outside rate()"),
    ("delta(esenas_iteration[5m])", "delta() can go negative"),
    ("deriv(esenas_env_steps_total[5m])", "deriv() can go negative"),
    ("esenas_operator_job_workers{state=\"desired\"} - esenas_workers_connected", "a difference without clamp_min"),
])
def test_the_negative_rate_check_can_fail(expr: str, problem: str) -> None:
    assert any(problem in p for p in _negative_capable(expr)), _negative_capable(expr)


def test_the_negative_rate_check_passes_good_queries() -> None:
    for expr in ("sum(rate(esenas_env_steps_total{esenas_job=~\"$job\"}[$__rate_interval]))",
                 "increase(esenas_rollouts_total[1h])",
                 "clamp_min(esenas_operator_job_workers - esenas_workers_connected, 0)",
                 'rate(esenas_results_rejected_total{reason=~"not-leased|a-b"}[5m])', "esenas_iteration"):
        assert _negative_capable(expr) == [], expr


def test_dashboard_units() -> None:
    for panel in _panels():
        unit = panel["fieldConfig"]["defaults"].get("unit")
        title = panel["title"]
        if title.endswith("/ s"):
            assert unit == "ops", f"{title!r}: a per-second panel in {unit!r}"
        elif "duration" in title.lower():
            assert unit == "s", f"{title!r}: a duration in {unit!r}"
        else:
            assert unit == "short", f"{title!r}: {unit!r}"
    # Compression is a fraction (1 - size/dense, docs/contracts.md): shown in percent on its own
    # 0-100 % axis, the override found by its query's refId rather than by its legend.
    (panel,) = [p for p in _panels() if "compression" in p["title"].lower()]
    (target,) = [t for t in panel["targets"] if "esenas_topology_compression_ratio" in t["expr"]]
    (override,) = panel["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byFrameRefID", "options": target["refId"]}
    props = {p["id"]: p["value"] for p in override["properties"]}
    assert (props["unit"], props["min"], props["max"]) == ("percentunit", 0, 1)
    assert "percent" in panel["description"] and "(%)" in panel["title"]
