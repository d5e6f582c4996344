"""Metrics end to end: a real Prometheus (1 s scrapes) scrapes a real local run (`esenas run`:
aggregator and worker processes over gRPC) and the real operator, which runs against the fake API
server and reads that run's aggregator. Every dashboard panel's query must return data.

Set ESENAS_DASHBOARD_DUMP=FILE to also save every panel's query range as JSON (observing for
ESENAS_DASHBOARD_SECONDS in all), from which scripts/render-dashboard.py draws docs/img/dashboard.png."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
import yaml

from tests.e2e.promharness import Prometheus
from tests.fakekube.harness import FakeKube
from tests.integration.operator.opharness import CRD_FILE, OperatorProcess, env_without_proxy
from tests.static.chart_tools import CHART, run, tool

JOB: Final = "pendulum-metrics"
NAMESPACE: Final = "default"
WORKERS: Final = 2
FIRST_SAMPLE_S: Final = 6.0  # Prometheus needs a few scrapes before rate() has two samples
DEADLINE_S: Final = 180.0
RATE_INTERVAL: Final = "10s"  # stands in for Grafana's $__rate_interval at a 1 s scrape interval

JOB_DOC: Final = {
    "apiVersion": "esenas.dev/v1alpha1",
    "kind": "ESENASJob",
    "metadata": {"name": JOB, "namespace": NAMESPACE},
    "spec": {
        "seed": 1,
        "environment": {"id": "InvertedPendulum-v5", "maxEpisodeSteps": 200},
        # A searched chromatic topology, so the topology panel shows a real compression.
        "policy": {"template": "linear", "topology": "partition", "partitions": 2},
        "controller": {"type": "random"},
        "es": {"sigma": 0.05, "stepSize": 0.05, "perturbations": 8, "topDirections": 4, "exactEvals": 2},
        "stopping": {"maxIterations": 100000},  # the test stops the run itself
        "trials": {"count": 2, "envSteps": 400},  # so the entropy panel's trial series has data
        "workers": {"replicas": WORKERS},
    },
}


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(panel title, legend, PromQL) of every panel target, with the dashboard variables filled in."""
    dash = json.loads((CHART / "dashboards" / "esenas.json").read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            expr = (target["expr"].replace("$namespace", NAMESPACE).replace("$job", JOB)
                    .replace("$__rate_interval", RATE_INTERVAL))
            title = panel["title"].replace("$job", JOB)
            out.append((title, target.get("legendFormat", ""), expr))
    return out


@pytest.fixture
def local_run(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """`esenas run` of the job with real aggregator and worker processes; yields its HTTP port."""
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(JOB_DOC))
    out = tmp_path / "run"
    log = (tmp_path / "esenas-run.log").open("wb")
    exe = Path(sys.executable).parent / "esenas"
    proc = subprocess.Popen([str(exe), "run", str(job_file), "--workers", str(WORKERS), "--output", str(out)],
                            cwd=tmp_path, env=env_without_proxy(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    ports = out / ".ports.json"
    deadline = time.monotonic() + 120
    while not ports.exists():
        assert proc.poll() is None, (tmp_path / "esenas-run.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the aggregator did not publish its ports in 120 s"
        time.sleep(0.2)
    time.sleep(0.2)  # the file is written whole, but give the writer a moment to close it
    http_port = int(json.loads(ports.read_text())["http"])
    yield http_port, job_file
    # Ctrl-C: checkpoint, stop the workers and the aggregator, write the results folder.
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


@pytest.fixture
def operator_metrics_port(tmp_path: Path, local_run: tuple[int, Path]) -> Iterator[int]:
    """The real operator against the fake API server, reading the local run's aggregator."""
    http_port, job_file = local_run
    workdir = tmp_path / "cluster"
    workdir.mkdir()
    cluster = FakeKube(workdir)
    try:
        cluster.kubectl("apply", "-f", str(CRD_FILE))
        cluster.wait_for(lambda: "esenasjobs" in cluster.kubectl("api-resources", "--api-group=esenas.dev").stdout)
        env = {**env_without_proxy(), **{k: v for k, v in cluster.env().items() if k in ("KUBECONFIG", "KUBECACHEDIR")}}
        op = OperatorProcess(workdir, env, f"http://127.0.0.1:{http_port}", interval=1.0)
        op.start()
        try:
            cluster.kubectl("apply", "-f", str(job_file))
            yield op.metrics_port
        finally:
            op.stop()
    finally:
        cluster.stop()


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def test_every_dashboard_query_returns_data(tmp_path: Path, local_run: tuple[int, Path],
                                            operator_metrics_port: int) -> None:
    http_port, _ = local_run
    prom_dir = tmp_path / "prometheus"
    prom_dir.mkdir()
    prom = Prometheus(prom_dir, {"esenas-aggregator": [f"127.0.0.1:{http_port}"],
                                 "esenas-operator": [f"127.0.0.1:{operator_metrics_port}"]})
    try:
        start = time.time()
        time.sleep(FIRST_SAMPLE_S)
        queries = dashboard_queries()
        missing = queries
        while missing and time.time() - start < DEADLINE_S:
            missing = [q for q in queries if not prom.query(q[2])]
            if missing:
                time.sleep(1.0)
        assert prom.targets_up() == {"esenas-aggregator": "up", "esenas-operator": "up"}
        assert not missing, f"panels without data after {time.time() - start:.0f} s:\n" + \
            "\n".join(f"  {title}: {expr}" for title, _, expr in missing)
        # The job made progress and the operator saw it (values, not only series).
        assert float(prom.query(f'esenas_iteration{{esenas_job="{JOB}"}}')[0]["value"][1]) >= 1
        desired = prom.query(f'esenas_operator_job_workers{{esenas_job="{JOB}", state="desired"}}')
        assert float(desired[0]["value"][1]) == WORKERS
        # Both real scrapes pass promtool's metric lint.
        for port in (http_port, operator_metrics_port):
            proc = run([tool("promtool"), "check", "metrics"], stdin=_scrape(port), check=False)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        dump = os.environ.get("ESENAS_DASHBOARD_DUMP")
        if dump:
            # For the picture, keep the run going to draw curves rather than points.
            time.sleep(max(0.0, start + float(os.environ.get("ESENAS_DASHBOARD_SECONDS", "0")) - time.time()))
            end = time.time()
            data = [{"panel": title, "legend": legend, "expr": expr,
                     "result": prom.query_range(expr, start, end, 1.0)} for title, legend, expr in queries]
            Path(dump).write_text(json.dumps({"job": JOB, "start": start, "end": end, "queries": data}))
    finally:
        prom.stop()


def test_dashboard_queries_cover_every_panel() -> None:
    """The loop above checks every target of every non-row panel."""
    dash = json.loads((CHART / "dashboards" / "esenas.json").read_text())
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert len(dashboard_queries()) == sum(len(p["targets"]) for p in panels) > 0
