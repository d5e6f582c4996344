"""Opt-in: the quickstart on a real cluster (kind or k3d), with the images already loaded.

Run with `make test-cluster` (pytest -m cluster) after docs/quickstart.md steps 1 and 3's image
loading; it uses the current KUBECONFIG context and is skipped when no cluster answers. These
development machines have no cluster, so CI never runs it; the fake API server and the simulated
cluster (tests/e2e) stand in for it there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Final

import pytest

REPO: Final = Path(__file__).resolve().parents[2]
NS: Final = "esenas-cluster-test"
RELEASE: Final = "esenas-cluster-test"
JOB: Final = "inverted-pendulum"

pytestmark = pytest.mark.cluster


def _tool(name: str) -> str:
    local = REPO / ".tools" / "bin" / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} not found: run scripts/fetch-tools.sh")
    return found


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("kubectl"), *args], capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture(scope="module")
def cluster() -> Any:
    if kubectl("version", "--request-timeout=5s", "-o", "json", check=False).returncode != 0:
        pytest.skip("no Kubernetes cluster reachable with the current KUBECONFIG")
    subprocess.run(
        [_tool("helm"), "upgrade", "--install", RELEASE, str(REPO / "helm" / "esenas"),
         "--namespace", NS, "--create-namespace", "--wait", "--timeout", "5m",
         "--set", "watch.clusterWide=false", "--set", f"watch.namespaces={{{NS}}}"],
        check=True, timeout=400,
    )
    yield
    kubectl("delete", "esj", "--all", "-n", NS, "--wait=true", check=False)
    subprocess.run([_tool("helm"), "uninstall", RELEASE, "--namespace", NS], check=False, timeout=300)
    kubectl("delete", "namespace", NS, "--wait=false", check=False)


def _job() -> dict[str, Any]:
    return dict(json.loads(kubectl("get", "esj", JOB, "-n", NS, "-o", "json").stdout))


def test_quick_job_succeeds_and_cleans_up(cluster: None) -> None:
    kubectl("apply", "-n", NS, "-f", str(REPO / "manifests" / "examples" / "inverted-pendulum.yaml"))
    deadline = time.monotonic() + 600
    phase = None
    while time.monotonic() < deadline:
        phase = (_job().get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(5)
    status = _job().get("status") or {}
    assert phase == "Succeeded", f"job ended as {phase}: {json.dumps(status, indent=1)}"
    assert status["bestReward"] >= 1000
    result = json.loads(kubectl("get", "configmap", f"{JOB}-result", "-n", NS, "-o", "json").stdout)
    assert "policy.json" in result["data"]

    kubectl("delete", "esj", JOB, "-n", NS, "--wait=true")
    deadline = time.monotonic() + 120
    left = "?"
    while time.monotonic() < deadline:
        left = kubectl("get", "deployments,services,configmaps,secrets", "-n", NS,
                       "-l", f"esenas.dev/job={JOB}", "-o", "name").stdout.strip()
        if not left:
            break
        time.sleep(2)
    assert not left, f"children left after delete: {left}"
