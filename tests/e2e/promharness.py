"""A real Prometheus server for tests: started on 127.0.0.1 with a temp storage path and a 1 s
scrape interval, queried over its HTTP API."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.fakekube.harness import stop_process
from tests.static.chart_tools import tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """`prometheus` scraping the given jobs ({job name: ["host:port", ...]}) every second."""

    def __init__(self, workdir: Path, targets: dict[str, list[str]]) -> None:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": name, "static_configs": [{"targets": t}]} for name, t in targets.items()],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("wb")
        # A free port can be taken by another test between probing and binding: try a few.
        for _ in range(3):
            self.port = free_port()
            self.process = subprocess.Popen(
                [tool("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.port}",
                 "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                stdout=self._log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 60
            while not self.ready() and self.process.poll() is None:
                assert time.monotonic() < deadline, f"prometheus not ready in 60 s: {self.log()[-2000:]}"
                time.sleep(0.2)
            if self.process.poll() is None:
                return
        raise AssertionError(f"prometheus did not start: {self.log()[-2000:]}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: Any) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query: the result vector (empty when the query has no data)."""
        return list(self.api("query", query=expr)["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return list(self.api("query_range", query=expr, start=start, end=end, step=step)["result"])

    def targets_up(self) -> dict[str, str]:
        """job name -> health of its (single) target."""
        return {t["labels"]["job"]: t["health"] for t in self.api("targets")["activeTargets"]}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process, timeout=20)
        self._log.close()
