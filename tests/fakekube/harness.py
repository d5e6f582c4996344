"""Run the fake API server as a separate process and talk to it: a kubeconfig, a small sync
HTTP client, and a runner for the real kubectl binary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import yaml

REPO: Final = Path(__file__).resolve().parents[2]
PATCH_TYPES: Final = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


def write_kubeconfig(path: Path, url: str, namespace: str = "default") -> Path:
    """A kubeconfig with one context pointing at `url` (token is ignored by the server)."""
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "fakekube", "cluster": {"server": url}}],
        "users": [{"name": "fakekube", "user": {"token": "fakekube-token"}}],
        "contexts": [{"name": "fakekube", "context": {"cluster": "fakekube", "user": "fakekube",
                                                      "namespace": namespace}}],
        "current-context": "fakekube",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def kubectl_binary() -> str:
    """The real kubectl: .tools/bin first (scripts/fetch-tools.sh), then PATH."""
    local = REPO / ".tools" / "bin" / "kubectl"
    if local.exists():
        return str(local)
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: run scripts/fetch-tools.sh (or `make tools`)")
    return found


class ApiStatusError(Exception):
    """A non-2xx answer; `status` is the metav1.Status body the server sent."""

    def __init__(self, code: int, status: dict[str, Any]) -> None:
        super().__init__(f"{code} {status.get('reason')}: {status.get('message')}")
        self.code = code
        self.status = status
        self.reason = str(status.get("reason", ""))


class KubeClient:
    """A deliberately small sync client: paths in, parsed JSON out."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def request(self, method: str, path: str, body: Any = None, *,
                content_type: str = "application/json", query: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> Any:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": content_type, **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                status = json.loads(raw)
            except ValueError:
                status = {"message": raw.decode(errors="replace")}
            raise ApiStatusError(err.code, status) from None
        return json.loads(raw) if raw else None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query or None)

    def list(self, path: str, **query: Any) -> list[dict[str, Any]]:
        return list(self.request("GET", path, query=query or None)["items"])

    def create(self, path: str, obj: dict[str, Any], **query: Any) -> Any:
        return self.request("POST", path, obj, query=query or None)

    def replace(self, path: str, obj: dict[str, Any], **query: Any) -> Any:
        return self.request("PUT", path, obj, query=query or None)

    def patch(self, path: str, patch: Any, kind: str = "merge", **query: Any) -> Any:
        return self.request("PATCH", path, patch, content_type=PATCH_TYPES[kind],
                            query=query or None)

    def delete(self, path: str, body: dict[str, Any] | None = None, **query: Any) -> Any:
        return self.request("DELETE", path, body, query=query or None)

    def watch(self, path: str, timeout: float = 30, **query: Any) -> Iterator[dict[str, Any]]:
        """Yield watch events (decoded lines) until the server ends the stream."""
        query = {"watch": "true", **query}
        url = f"{self.url}{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            for line in resp:
                if line.strip():
                    yield json.loads(line)

    def stats(self) -> dict[str, Any]:
        return dict(self.get("/_fake/stats"))

    def reset_stats(self) -> None:
        self.request("POST", "/_fake/reset")

    def compact(self) -> None:
        self.request("POST", "/_fake/compact")



def stop_process(process: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM a child process, SIGKILL it after `timeout` seconds, reap it and close its stdout."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


class FakeKube:
    """A running fake API server process, its kubeconfig, a client and a kubectl runner."""

    def __init__(self, workdir: Path, *extra_args: str) -> None:
        self.workdir = workdir
        self.kubeconfig = workdir / "kubeconfig"
        self.cache_dir = workdir / "kube-cache"
        self.log_path = workdir / "fakekube.log"
        self._log = self.log_path.open("w")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakekube", "--port", "0",
             "--kubeconfig", str(self.kubeconfig), *extra_args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"fake API server did not start: {line!r}; see {self.log_path}: "
                               f"{self.log_path.read_text()[-2000:]}")
        self.url = line.rsplit(" ", 1)[1].strip()
        self.client = KubeClient(self.url)

    def env(self) -> dict[str, str]:
        """Environment for processes that should talk to this server (kubectl, kopf)."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig),
                "KUBECACHEDIR": str(self.cache_dir)}

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this server; raises with its output when it fails."""
        cmd = [kubectl_binary(), "--cache-dir", str(self.cache_dir), *args]
        done = subprocess.run(cmd, env=self.env(), input=input, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}\n"
                                 f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        return done

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20,
                 interval: float = 0.1) -> Any:
        """Poll `predicate()` until it returns something truthy; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except ApiStatusError as err:
                last = err
            if last and not isinstance(last, Exception):
                return last
            time.sleep(interval)
        raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        self._log.close()
