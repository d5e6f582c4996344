"""A whole simulated cluster for tests: the fake API server, the pod runner, and the real operator,
each a separate process, plus helpers to find pod processes and their mapped ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from tests.fakekube.harness import FakeKube, stop_process
from tests.simcluster.kubelet import MARKER_ENV, PORTS_ANNOTATION

REPO: Final = Path(__file__).resolve().parents[2]
CRD_FILE: Final = REPO / "helm" / "esenas" / "crds" / "esenasjobs.yaml"
Obj = dict[str, Any]


class RunnerProcess:
    """`python -m tests.simcluster` as a child process; `.proxy` is its cluster-network proxy URL."""

    def __init__(self, workdir: Path, kubeconfig: Path, *extra: str) -> None:
        self.workdir = workdir
        self.log_path = workdir / "simcluster.log"
        self._log = self.log_path.open("wb")
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.simcluster", "--kubeconfig", str(kubeconfig), "--workdir", str(workdir / "run"), *extra],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "simcluster ready" not in line:
            self.stop()
            raise RuntimeError(f"pod runner did not start: {line!r}\n{self.log()[-3000:]}")
        self.proxy = line.split("proxy=", 1)[1].strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30) -> None:
        stop_process(self.process, timeout)
        self._log.close()


def proxy_env(proxy: str) -> dict[str, str]:
    """What a process outside the pods (the operator) needs to reach Services by DNS name."""
    no = "127.0.0.1,localhost,::1"
    return {"http_proxy": proxy, "HTTP_PROXY": proxy, "grpc_proxy": proxy, "no_proxy": no, "NO_PROXY": no}


def pod_processes(marker: str) -> dict[int, str]:
    """pid -> pod (namespace/name) of every live process started by the runner with this marker."""
    found: dict[int, str] = {}
    needle = f"{MARKER_ENV}={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != "Z":
            pod = next((e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"SIMCLUSTER_POD=")), "?")
            found[int(entry.name)] = pod
    return found


def container_pid(pod: Obj, container: str | None = None) -> int | None:
    """The process id of a running container (containerID `simcluster://PID`)."""
    for c in (pod.get("status") or {}).get("containerStatuses") or ():
        if (container is None or c["name"] == container) and str(c.get("containerID", "")).startswith("simcluster://"):
            return int(c["containerID"].split("://", 1)[1])
    return None


def restart_count(pod: Obj) -> int:
    return sum(int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or ())


def mapped_port(pod: Obj, container_port: int) -> int | None:
    """The local port the runner gave a containerPort of this pod."""
    ports = json.loads((pod["metadata"].get("annotations") or {}).get(PORTS_ANNOTATION, "{}"))
    value = ports.get(str(container_port))
    return int(value) if value is not None else None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll until predicate() is truthy; fail naming `what` and the last value after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # a transient API or HTTP error while things start
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f} s; last value: {last!r}")


class SimCluster:
    """The fake API server with the CRD applied, the pod runner, and handles for the test."""

    def __init__(self, workdir: Path, containers: bool = False) -> None:
        """`containers`: the runner runs every pod as runc containers of the built images."""
        self.workdir = workdir
        self.containers = containers
        (workdir / "api").mkdir(parents=True, exist_ok=True)
        self.api = FakeKube(workdir / "api")
        try:
            self.api.kubectl("apply", "-f", str(CRD_FILE))
            self.runner = RunnerProcess(workdir, self.api.kubeconfig, *(["--containers"] if containers else []))
        except BaseException:
            self.api.stop()
            raise
        self.marker = str((workdir / "run").resolve())

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.api.kubectl(*args, check=check)

    def pods(self, selector: str, namespace: str = "default") -> list[Obj]:
        """Live (not terminating) pods matching a label selector."""
        items = self.api.client.list(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def processes(self) -> dict[int, str]:
        return pod_processes(self.marker)

    def stop(self) -> None:
        try:
            self.runner.stop()
        finally:
            self.api.stop()
