"""Real aggregator and worker processes on 127.0.0.1 for the runtime integration tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: A user's environment that goes wrong on step 20 of every episode: it raises (``Raises``),
#: returns a NaN reward (``ReturnsNaN``), ends its process as a native crash would (``Exits``), or
#: never returns (``Hangs``).
#: Written by :func:`write_failing_env`.
FAILING_ENV = """
import os
import time

import gymnasium as gym
import numpy as np


class Raises(gym.Env):
    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float64)
    bad = "raise"

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2), {}

    def step(self, action):
        self.t += 1
        if self.t == 20 and self.bad == "raise":
            raise RuntimeError("boom at step 20")
        if self.t == 20 and self.bad == "exit":
            os._exit(3)
        while self.t == 20 and self.bad == "hang":
            time.sleep(0.01)
        reward = float("nan") if self.t == 20 else -abs(float(action[0]) - 0.5)
        return np.array([self.t / 50, 0.0]), reward, self.t >= 50, False, {}


class ReturnsNaN(Raises):
    bad = "nan"


class Exits(Raises):
    bad = "exit"


class Hangs(Raises):
    bad = "hang"
"""


def write_failing_env(folder: Path) -> str:
    """Write :data:`FAILING_ENV` as ``failing_env.py`` into ``folder`` (put it on PYTHONPATH); returns the module name."""
    (folder / "failing_env.py").write_text(FAILING_ENV)
    return "failing_env"


def write_job(folder: Path, **overrides: Any) -> Path:
    """The InvertedPendulum example job with spec overrides (dotted keys, e.g. ``workers.batchSize``)."""
    doc = yaml.safe_load((REPO / "manifests/examples/inverted-pendulum.yaml").read_text())
    for dotted, value in overrides.items():
        node = doc["spec"]
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(doc))
    (folder / "token").write_text(TOKEN)
    return path


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class AggregatorProc(Proc):
    grpc_port: int = 0
    http_port: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            body = r.read()
        return json.loads(body) if path != "/metrics" else body.decode()

    def status(self) -> dict[str, Any]:
        return dict(self.get("/status"))

    def wait_for(self, pred: Any, timeout: float, what: str) -> dict[str, Any]:
        """Poll /status until ``pred(status)``; fails with the log tail on timeout or exit."""
        end = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < end:
            try:
                last = self.status()
                if pred(last):
                    return last
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if self.proc.poll() is not None and not pred(last):
                break
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; last status {last}\n--- log\n{self.text()[-3000:]}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_aggregator(
    folder: Path, job: Path, grpc_port: int = 0, exit_when_done: bool = True, name: str = "aggregator", *extra: str
) -> AggregatorProc:
    ports = folder / f"{name}.ports.json"
    ports.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "esenas_aggregator", "--job", str(job), "--checkpoint-dir", str(folder / "ckpt"),
        "--token-file", str(folder / "token"), "--host", "127.0.0.1", "--port", str(grpc_port),
        "--http-port", "0", "--ports-file", str(ports),
    ]
    if exit_when_done:
        cmd.append("--exit-when-done")
    cmd.extend(extra)
    return _serve(cmd, folder, name, ports)


def start_relay(folder: Path, job: Path, upstream: str, name: str = "relay", grpc_port: int = 0, *extra: str) -> AggregatorProc:
    """A real ``esenas_aggregator.relay_cli`` process in front of ``upstream``; its workers dial ``.address``."""
    ports = folder / f"{name}.ports.json"
    ports.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-c", "from esenas_aggregator.relay_cli import run; raise SystemExit(run())",
        "--upstream", upstream, "--job", str(job), "--token-file", str(folder / "token"), "--host", "127.0.0.1",
        "--port", str(grpc_port), "--http-port", "0", "--ports-file", str(ports), "--relay-id", name, "--exit-when-done", *extra,
    ]
    return _serve(cmd, folder, name, ports)


def _serve(cmd: list[str], folder: Path, name: str, ports: Path) -> AggregatorProc:
    """Start an aggregator or relay process logging to ``folder/name.log``; once it wrote its ports."""
    log = folder / f"{name}.log"
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)
    end = time.monotonic() + 60
    while not ports.exists():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"{name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    p = json.loads(ports.read_text())
    return AggregatorProc(proc, log, int(p["grpc"]), int(p["http"]))


def start_worker(folder: Path, job: Path, address: str, name: str, *extra: str) -> Proc:
    log = folder / f"{name}.log"
    cmd = [
        sys.executable, "-m", "esenas_worker", "--job", str(job), "--aggregator", address,
        "--token-file", str(folder / "token"), "--worker-id", name, *extra,
    ]
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)
    return Proc(proc, log)


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric_name = head.split("{", 1)[0]
        if metric_name != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
            found = True
    if not found:
        raise AssertionError(f"metric {name}{labels} not found")
    return total


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def stop_all(*procs: Proc) -> None:
    for p in procs:
        p.kill(signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(10)
