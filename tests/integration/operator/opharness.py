"""Run the real operator process against the fake API server, plus a stand-in aggregator HTTP endpoint.

The stand-in serves only the aggregator's HTTP contract (GET /status, /result, /summary and
/history from docs/contracts.md) so status handling can be tested without gRPC or MuJoCo.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parents[3]
JOBS: Final = "/apis/esenas.dev/v1alpha1/namespaces/{ns}/esenasjobs"
CRD_FILE: Final = REPO / "helm" / "esenas" / "crds" / "esenasjobs.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StandInAggregator:
    """GET /{namespace}/{name}/status, /result, /summary and /history from dicts the test sets;
    503 for an unset status, 404 for an unset result document (the aggregator has none yet)."""

    def __init__(self) -> None:
        self.statuses: dict[tuple[str, str], dict[str, Any]] = {}
        self.results: dict[tuple[str, str], Any] = {}
        self.summaries: dict[tuple[str, str], Any] = {}
        self.histories: dict[tuple[str, str], Any] = {}
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                parts = self.path.strip("/").split("/")
                body: Any = None
                docs = {"status": outer.statuses, "result": outer.results, "summary": outer.summaries, "history": outer.histories}
                if len(parts) == 3 and parts[2] in docs:
                    body = docs[parts[2]].get((parts[0], parts[1]))
                if body is None:
                    self.send_response(404 if len(parts) == 3 and parts[2] in ("result", "summary", "history") else 503)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url_template(self) -> str:
        return f"http://127.0.0.1:{self.port}/{{namespace}}/{{name}}"

    def finish(self, namespace: str, name: str, policy: Any, summary: dict[str, Any], history: list[Any]) -> None:
        """Serve a result: the documents the operator copies into the job's result ConfigMaps."""
        key = (namespace, name)
        self.results[key], self.summaries[key], self.histories[key] = policy, summary, {"history": history}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def running_status(iteration: int = 3, **extra: Any) -> dict[str, Any]:
    """An aggregator /status body per docs/contracts.md."""
    return {
        "phase": "Running", "iteration": iteration, "envSteps": 1000 * iteration, "episodes": 16 * iteration,
        "bestReward": 12.5 * iteration, "meanReward": 10.0 * iteration, "evalReward": None,
        "workersConnected": 2, "topologySize": 17, "denseParams": 1000, "compression": 1000 / 17,
        "done": False, "reason": "", "resultPath": "", **extra,
    }


class OperatorProcess:
    """`esenas-operator --standalone` as a child process, with its log in a file."""

    def __init__(self, workdir: Path, env: dict[str, str], url_template: str, interval: float = 1.0,
                 args: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.args = list(args)  # extra esenas-operator arguments, e.g. --namespace
        self.env = {
            **env,
            "ESENAS_AGGREGATOR_URL_TEMPLATE": url_template,
            "ESENAS_STATUS_INTERVAL": str(interval),
            "PYTHONUNBUFFERED": "1",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"operator-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        exe = Path(sys.executable).parent / "esenas-operator"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "esenas_operator.main"]
        cmd += ["--standalone", "--bind", "127.0.0.1", "--metrics-port", str(self.metrics_port), "--liveness-port", str(self.liveness_port), "-v", *self.args]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.healthy():
                return
            assert self.process.poll() is None, f"operator exited {self.process.returncode}: {self.log()[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"operator not live within 30 s: {self.log()[-3000:]}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("operator-*.log")))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        if hasattr(self, "_log"):
            self._log.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


def job_doc(name: str, replicas: int = 2, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "esenas.dev/v1alpha1",
        "kind": "ESENASJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"environment": {"id": "InvertedPendulum-v5"}, "workers": {"replicas": replicas}, **spec},
    }


def env_without_proxy() -> dict[str, str]:
    """The stand-in is on 127.0.0.1: make sure no proxy variable reroutes urllib."""
    return {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
