"""The pod runner on its own, with a tiny HTTP server as the workload (no MuJoCo, a few seconds):
env and files reach the process as the pod spec says, readiness gates the Service, Service names
resolve through the proxy, exits restart, scaling and deletion stop processes."""

from __future__ import annotations

import base64
import json
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from tests.fakekube.harness import FakeKube
from tests.fakekube.plugin import fakekube, fakekube_factory  # noqa: F401 - fixtures
from tests.simcluster.harness import (
    RunnerProcess,
    container_pid,
    pod_processes,
    restart_count,
    wait_for,
)

NS: Final = "default"
# Serves what it was given: its env, the files its flag and env name, and its working directory.
SERVER: Final = r"""
import argparse, http.server, json, os
p = argparse.ArgumentParser(); p.add_argument("--port", type=int); p.add_argument("--conf"); a = p.parse_args()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"pod": os.environ["POD_NAME"], "ns": os.environ["POD_NS"], "ip": os.environ["POD_IP"],
                           "greeting": os.environ["GREETING"], "conf": open(a.conf).read(),
                           "token": open(os.environ["TOKEN_FILE"]).read(), "s_token": os.environ["S_token"],
                           "cwd": os.getcwd(), "expanded": os.environ["EXPANDED"]}).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", a.port), H).serve_forever()
"""


def deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": "echo"}
    container = {
        "name": "echo", "image": "python:3.11", "command": ["python", "-c", SERVER],
        "args": ["--port", "8000", "--conf", "/etc/cfg/greeting"],
        "ports": [{"name": "http", "containerPort": 8000}],
        "env": [
            {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "TOKEN_FILE", "value": "/var/run/sec/token"},
            {"name": "EXPANDED", "value": "$(GREETING)-$(POD_NS)"},
        ],
        "envFrom": [{"secretRef": {"name": "sec"}, "prefix": "S_"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "sec", "mountPath": "/var/run/sec"},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo", "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "containers": [container], "terminationGracePeriodSeconds": 2,
                     "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}},
                                 {"name": "sec", "secret": {"secretName": "sec"}}, {"name": "tmp", "emptyDir": {}}]}}},
    }


@pytest.fixture
def runner(fakekube: FakeKube, tmp_path: Path) -> Iterator[RunnerProcess]:  # noqa: F811 - fixture above
    r = RunnerProcess(tmp_path, fakekube.kubeconfig)
    yield r
    r.stop()
    assert not pod_processes(str((tmp_path / "run").resolve())), "processes outlived the runner"


def fetch(proxy: str, url: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
    with opener.open(url, timeout=5) as r:
        return json.loads(r.read())


def test_runner_runs_pods_as_the_spec_says(fakekube: FakeKube, runner: RunnerProcess, tmp_path: Path) -> None:  # noqa: F811
    c = fakekube.client
    pods_path, deploy_path = f"/api/v1/namespaces/{NS}/pods", f"/apis/apps/v1/namespaces/{NS}/deployments"
    marker = str((tmp_path / "run").resolve())
    c.create(f"/api/v1/namespaces/{NS}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
             "spec": {"selector": {"app": "echo"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}})
    c.create(deploy_path, deployment(2))
    # The pods wait (Pending, FailedMount) until their ConfigMap and Secret exist, like a kubelet.
    wait_for(lambda: [(p.get("status") or {}).get("reason") for p in c.list(pods_path)] == ["FailedMount"] * 2,
             20, "two pods waiting for their volumes")
    assert not pod_processes(marker)
    c.create(f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "cfg"}, "data": {"greeting": "hello"}})
    c.create(f"/api/v1/namespaces/{NS}/secrets", {"metadata": {"name": "sec"}, "data": {"token": base64.b64encode(b"s3cret").decode()}})

    status = wait_for(lambda: (s := c.get(f"{deploy_path}/echo").get("status") or {}).get("readyReplicas") == 2 and s, 30, "2 ready")
    assert status["replicas"] == status["updatedReplicas"] == status["availableReplicas"] == 2
    assert status["observedGeneration"] == 1
    seen = {fetch(runner.proxy, "http://echo.default.svc/")["pod"] for _ in range(6)}
    assert seen == {p["metadata"]["name"] for p in c.list(pods_path)}, "the Service balances over both ready pods"
    body = fetch(runner.proxy, "http://echo.default.svc.cluster.local:80/")
    assert (body["greeting"], body["conf"], body["token"], body["s_token"]) == ("hello", "hello", "s3cret", "s3cret")
    assert (body["ns"], body["ip"], body["expanded"]) == (NS, "127.0.0.1", f"hello-{NS}")
    assert body["cwd"].startswith(marker) and body["cwd"].endswith("/volumes/tmp")
    with pytest.raises(urllib.error.HTTPError) as err:
        fetch(runner.proxy, "http://nothing.default.svc/")
    assert err.value.code == 503

    # An exited process is restarted in the same pod, and its restartCount counts it.
    pod = c.list(pods_path)[0]
    os.kill(container_pid(pod) or 0, signal.SIGKILL)
    wait_for(lambda: restart_count(c.get(f"{pods_path}/{pod['metadata']['name']}")) == 1, 20, "restartCount 1")
    wait_for(lambda: len(pod_processes(marker)) == 2, 20, "two processes again")

    # Scale down through the scale subresource: one pod, one process.
    c.patch(f"{deploy_path}/echo/scale", {"spec": {"replicas": 1}})
    wait_for(lambda: len(pod_processes(marker)) == 1 and len(c.list(pods_path)) == 1, 20, "one pod and one process")
    wait_for(lambda: (c.get(f"{deploy_path}/echo").get("status") or {}).get("replicas") == 1, 20, "status.replicas 1")

    # Deleting the Deployment cascades to its pods, and the runner stops their processes.
    c.delete(f"{deploy_path}/echo")
    wait_for(lambda: not pod_processes(marker) and not c.list(pods_path), 20, "no pods and no processes")


def test_failing_probes_keep_a_pod_unready_and_restart_it(fakekube: FakeKube, runner: RunnerProcess) -> None:  # noqa: F811
    """Nothing listens on the probed port: never Ready, and the liveness probe restarts it."""
    c = fakekube.client
    probe = {"tcpSocket": {"port": "web"}, "periodSeconds": 1, "failureThreshold": 2, "timeoutSeconds": 1}
    container = {"name": "idle", "image": "python:3.11", "command": ["python", "-c", "import time; time.sleep(600)"],
                 "ports": [{"name": "web", "containerPort": 9000}], "readinessProbe": probe, "livenessProbe": probe}
    c.create(f"/apis/apps/v1/namespaces/{NS}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "idle"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "idle"}},
                 "template": {"metadata": {"labels": {"app": "idle"}}, "spec": {"containers": [container]}}}})
    pods_path = f"/api/v1/namespaces/{NS}/pods"
    pod = wait_for(lambda: next((p for p in c.list(pods_path) if restart_count(p) >= 1), None), 30, "a liveness restart")
    assert pod["status"]["phase"] == "Running"
    assert [x["status"] for x in pod["status"]["conditions"] if x["type"] == "Ready"] == ["False"]
    status = c.get(f"/apis/apps/v1/namespaces/{NS}/deployments/idle")["status"]
    assert status["readyReplicas"] == 0 and status["replicas"] == 1


def test_a_crash_leaves_its_log_tail_as_the_termination_message(fakekube: FakeKube, runner: RunnerProcess) -> None:  # noqa: F811
    """FallbackToLogsOnError: a failed exit's message is the tail of that run's log (80 lines,
    2048 bytes at most); the other container, with the default policy, reports none."""
    c = fakekube.client
    crash = "import sys; print('\\n'.join(f'line {i}' for i in range(200))); sys.exit(\"ModuleNotFoundError: No module named 'nowhere'\")"
    containers = [
        {"name": "crash", "image": "python:3.11", "command": ["python", "-c", crash], "terminationMessagePolicy": "FallbackToLogsOnError"},
        {"name": "plain", "image": "python:3.11", "command": ["python", "-c", crash]},
    ]
    c.create(f"/apis/apps/v1/namespaces/{NS}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "crash"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "crash"}},
                 "template": {"metadata": {"labels": {"app": "crash"}}, "spec": {"containers": containers}}}})
    pods_path = f"/api/v1/namespaces/{NS}/pods"

    def crashed() -> dict[str, Any] | None:
        for p in c.list(pods_path):
            statuses = {s["name"]: s for s in (p.get("status") or {}).get("containerStatuses") or ()}
            if all(s.get("lastState", {}).get("terminated") for s in statuses.values()) and len(statuses) == 2:
                return statuses
        return None

    statuses = wait_for(crashed, 30, "both containers exited once")
    message = statuses["crash"]["lastState"]["terminated"]["message"]
    assert message.endswith("ModuleNotFoundError: No module named 'nowhere'"), message
    assert len(message.encode()) <= 2048 and message.count("\n") <= 79 and "line 199" in message and "line 100" not in message
    assert statuses["crash"]["lastState"]["terminated"]["exitCode"] == 1
    assert "message" not in statuses["plain"]["lastState"]["terminated"]
