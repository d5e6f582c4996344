"""Shared helpers for the chart and manifest checks: locate the real tools and render the chart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

REPO: Final = Path(__file__).resolve().parents[2]
CHART: Final = REPO / "helm" / "esenas"
CONTRACTS: Final = REPO / "docs" / "contracts.md"

#: Every optional piece of the chart switched on.
ALL_ENABLED: Final[dict[str, Any]] = {
    "serviceMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "grafanaDashboard": {"enabled": True},
}
#: Watching two listed namespaces instead of the whole cluster.
NAMESPACED: Final[dict[str, Any]] = {"watch": {"clusterWide": False, "namespaces": ["ml", "research"]}}
#: Kinds from the prometheus-operator CRDs, unknown to kubernetes-validate; checked in test_monitoring.py.
MONITORING_KINDS: Final = frozenset({"ServiceMonitor", "PrometheusRule"})


def tool(name: str) -> str:
    """Path of a real tool binary: .tools/bin first (scripts/fetch-tools.sh), then PATH."""
    local = REPO / ".tools" / "bin" / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: run scripts/fetch-tools.sh (make tools)")
    return found


def venv_tool(name: str) -> str:
    """A console script of the project's venv, falling back to PATH."""
    local = REPO / ".venv" / "bin" / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def run(cmd: Sequence[str], *, check: bool = True, cwd: Path = REPO, stdin: str | None = None,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs a command, and on an unexpected exit status fails with its output."""
    proc = subprocess.run(list(cmd), cwd=cwd, input=stdin, capture_output=True, text=True,
                          env=None if env is None else {**os.environ, **env}, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def values_file(tmp: Path, values: Mapping[str, Any]) -> Path:
    """Writes override values to a file (helm -f), so nested lists need no --set escaping."""
    path = tmp / f"values-{abs(hash(yaml.safe_dump(dict(values)))) % 10**8}.yaml"
    path.write_text(yaml.safe_dump(dict(values)))
    return path


def template(tmp: Path, values: Mapping[str, Any] | None = None, *extra: str) -> str:
    """`helm template` of the chart with the given override values; returns the YAML text."""
    args = [tool("helm"), "template", "esenas", str(CHART), "--namespace", "esenas-system", *extra]
    if values:
        args += ["-f", str(values_file(tmp, values))]
    return run(args).stdout


def render(tmp: Path, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's objects as dicts (no CRDs), for structural assertions."""
    return [d for d in yaml.safe_load_all(template(tmp, values)) if d]


def find(docs: Sequence[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Objects of one kind (and name, when given)."""
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def contract_metric_names() -> set[str]:
    """Every metric name listed in docs/contracts.md's Metrics section."""
    text = CONTRACTS.read_text()
    section = text[text.index("## Metrics"):]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    return set(re.findall(r"`(esenas_[a-z0-9_]+)", section))


def rendered_rules(tmp: Path) -> dict[str, Any]:
    """The PrometheusRule's spec (a Prometheus rule file) rendered with default thresholds."""
    docs = render(tmp, {"prometheusRule": {"enabled": True}})
    (rule,) = find(docs, "PrometheusRule")
    spec: dict[str, Any] = rule["spec"]
    return spec
