"""Full system on a simulated cluster: the real kubectl applies an ESENASJob to the fake API
server, the real operator writes its children, and the pod runner (tests/simcluster) runs the
pods the operator wrote as real OCI containers (runc) of the images `make images` built: their
commands, env, mounts at their paths, read-only root, user 10001, dropped capabilities, ports and
Service names exactly as the manifests say. Nothing in the runtime or the operator is bypassed.
ESENAS_SIM_PROCESSES=1 runs the same tests with local processes instead (fast local iteration).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from tests.e2e.promharness import Prometheus
from tests.e2e.simops import esj, job_processes, operator_on_sim
from tests.fakekube.harness import kubectl_binary
from tests.integration.operator.opharness import OperatorProcess, env_without_proxy
from tests.simcluster.harness import (
    REPO,
    SimCluster,
    container_pid,
    mapped_port,
    restart_count,
    wait_for,
)
from tests.simcluster.oci import IMAGES_JSON, Image, load_images
from tests.simcluster.test_containers import runc_usable

EXAMPLE: Final = REPO / "manifests" / "examples" / "inverted-pendulum.yaml"
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimCluster, OperatorProcess]]:
    """API server + CRD, pod runner, and the operator reaching Services through the runner's proxy."""
    workdir = tmp_path_factory.mktemp("simcluster")
    containers = os.environ.get("ESENAS_SIM_PROCESSES") != "1"
    if containers:
        runc_usable()
        # Up to date with the sources: a no-op (cache hit) after `make images`, a rebuild of the
        # images whose inputs changed otherwise, never a stale image under a test of new code.
        build = subprocess.run([str(REPO / "scripts" / "build-images.sh")], capture_output=True, text=True,
                               env={**os.environ, "PY": sys.executable}, timeout=1800, check=False)
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
        assert IMAGES_JSON.exists(), f"{IMAGES_JSON} is missing after scripts/build-images.sh"
    with operator_on_sim(workdir, containers=containers) as sim:
        yield sim


def selector(job: str, component: str) -> str:
    return f"esenas.dev/job={job},app.kubernetes.io/component={component}"


def http_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def test_example_job_runs_to_succeeded(sim: tuple[SimCluster, OperatorProcess]) -> None:
    """1. kubectl apply the quick example -> Succeeded, best reward in `kubectl get esj`, `esenas fetch`
    after the fleet stopped; the job's token leaks into no log, status or Event."""
    cluster, op = sim
    cluster.kubectl("apply", "-f", str(EXAMPLE))
    name = yaml.safe_load(EXAMPLE.read_text())["metadata"]["name"]
    if cluster.containers:  # each pod checked as soon as its process is up, two workers among them
        assert_in_images(cluster, name)
    else:
        wait_for(lambda: len(job_processes(cluster, name, "worker")) == 2, 60, "two worker processes")
    status = wait_for(lambda: (s := esj(cluster, name).get("status") or {}).get("phase") in ("Succeeded", "Failed") and s,
                      120, f"{name} finished")
    assert status["phase"] == "Succeeded", f"{status}\n{cluster.runner.log()[-3000:]}"
    target = yaml.safe_load(EXAMPLE.read_text())["spec"]["stopping"]["targetReward"]
    assert status["bestReward"] >= target
    table = cluster.kubectl("get", "esj", name).stdout.splitlines()
    columns = dict(zip(table[0].split(), next(line for line in table if line.startswith(name)).split(), strict=False))
    assert columns["PHASE"] == "Succeeded" and float(columns["BEST"]) == status["bestReward"], table
    # The aggregator replayed each new best in its image (read-only root, user 10001) and the
    # workers' rollouts repeated bit for bit: none was corrected, none adopted unchecked.
    agg_logs = [p for p in (cluster.workdir / "run" / "pods").rglob("aggregator.log") if p.parent.name.startswith(f"{name}-")]
    replays = "".join(p.read_text(errors="replace") for p in agg_logs)
    assert agg_logs and "could not replay" not in replays and "replaying its items" not in replays, replays[-3000:]
    assert "confirmed by the aggregator's replay" in replays, replays[-3000:]

    # The operator stops the fleet once done: the runner ends every process of the job.
    wait_for(lambda: not job_processes(cluster, name, "worker") and not job_processes(cluster, name, "aggregator"),
             60, "the finished job's processes stopped")
    assert_fetch_gives_the_local_folder(cluster, name, status)

    assert_token_nowhere(cluster, op, name)

    cluster.kubectl("delete", "esj", name, "--wait=true", "--timeout=60s")
    assert_nothing_left(cluster, name)


def esenas(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "esenas"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "esenas_cli.main"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300, env=env, cwd=REPO, check=False)


def assert_fetch_gives_the_local_folder(cluster: SimCluster, job: str, status: Obj) -> None:
    """`esenas fetch`, after the fleet is gone, writes the files of an `esenas run` folder, with the
    same summary.json keys, through the real kubectl and the job's stored (chunked) result."""
    work = cluster.workdir / "fetch"
    work.mkdir()
    env = {**env_without_proxy(), "PATH": f"{Path(kubectl_binary()).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    local_job = yaml.safe_load(EXAMPLE.read_text())
    local_job["spec"]["stopping"] = {"maxIterations": 2}  # a short local run: its folder is what is compared
    (work / "job.yaml").write_text(yaml.safe_dump(local_job))
    run = esenas("run", str(work / "job.yaml"), "--in-process", "--workers", "1", "--output", str(work / "local"), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    fetched = esenas("fetch", job, "-n", "default", "-o", str(work / "fetched"), "--kubeconfig", str(cluster.api.kubeconfig), env=env)
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    assert f"results: {work / 'fetched'}" in fetched.stdout

    def files(folder: Path) -> list[str]:
        return sorted(p.name for p in folder.iterdir() if p.is_file())

    assert files(work / "fetched") == files(work / "local") == [
        "history.json", "policy.json", "reward_curve.png", "summary.json", "topology.png"]
    local = json.loads((work / "local" / "summary.json").read_text())
    summary = json.loads((work / "fetched" / "summary.json").read_text())
    assert list(summary) == list(local)
    assert summary["job"] == job and round(summary["bestReward"], 6) == status["bestReward"]
    assert summary["iterations"] == status["iteration"] == len(json.loads((work / "fetched" / "history.json").read_text()))
    policy = json.loads((work / "fetched" / "policy.json").read_text())
    assert policy["environment"]["id"] == "InvertedPendulum-v5" and len(policy["params"]) == policy["trainableParams"]
    assert status["result"]["configMap"] == f"{job}-result"


def assert_in_images(cluster: SimCluster, job: str, relays: int = 0, workers: int = 2) -> None:
    """Container mode really runs the images: each pod's main process has the built image's root
    filesystem as its root, mounted read-only, runs as 10001:10001 with no capabilities, and
    no_new_privs. Relays run the aggregator image.

    Each pod is checked as soon as its process is up, until the aggregator, ``relays`` relays and
    ``workers`` workers all were: a quick job can succeed, and have its aggregator stopped, while
    its last worker's container is still starting."""
    built = load_images()
    checked: set[str] = set()

    def check_new() -> bool:
        for component in ("aggregator", "relay", "worker"):
            for pid, pod in job_processes(cluster, job, component).items():
                if pod not in checked:
                    with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # gone: not checked
                        assert_in_image(pid, pod, built["worker" if component == "worker" else "aggregator"])
                        checked.add(pod)
        return len(checked) >= 1 + relays + workers

    wait_for(check_new, 60, f"the processes of the aggregator, {relays} relays and {workers} workers, each in its image")
    assert sum("-workers-" in pod for pod in checked) == workers, checked


def assert_in_image(pid: int, pod: str, image: Image) -> None:
    inside, built_venv = os.stat(f"/proc/{pid}/root/opt/esenas"), os.stat(image.rootfs / "opt" / "esenas")
    assert (inside.st_dev, inside.st_ino) == (built_venv.st_dev, built_venv.st_ino), (pod, image.name)
    root = next(line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines() if line.split()[4] == "/")
    assert "ro" in root[5].split(","), (pod, root)
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert status["Uid"].split()[:2] == ["10001", "10001"] and status["Gid"].split()[0] == "10001", pod
    assert int(status["CapEff"], 16) == 0 and status["NoNewPrivs"].strip() == "1", pod


def assert_token_nowhere(cluster: SimCluster, op: OperatorProcess, job: str) -> None:
    """The job's token is in its Secret and nowhere a user reads: not in the operator's log, any
    of its containers' logs, the ESENASJob (status, annotations), its Events or the result ConfigMap."""
    b64 = cluster.kubectl("get", "secret", f"{job}-token", "-o", "jsonpath={.data.token}").stdout.strip()
    token = base64.b64decode(b64).decode()
    assert len(token) >= 32, "the token is 32 random bytes"
    logs = sorted(p for p in (cluster.workdir / "run" / "pods").rglob("*.log") if p.parent.name.startswith(f"{job}-"))
    assert {p.name for p in logs} >= {"aggregator.log", "worker.log"}, logs
    places = {
        "operator log": op.log(),
        "ESENASJob": cluster.kubectl("get", "esj", job, "-o", "json").stdout,
        "events": cluster.kubectl("get", "events", "-o", "json").stdout,
        "result ConfigMap": cluster.kubectl("get", "configmap", f"{job}-result", "-o", "json").stdout,
        **{str(p.relative_to(cluster.workdir)): p.read_text(errors="replace") for p in logs},
    }
    assert all(places.values()), [where for where, text in places.items() if not text]
    leaks = [where for where, text in places.items() if token in text or b64 in text]
    assert not leaks, f"the job's token appears in: {leaks}"


def assert_nothing_left(cluster: SimCluster, job: str) -> None:
    """No object labelled with the job, no ESENASJob, and no process of its pods."""
    kinds = "deployments,services,configmaps,secrets,persistentvolumeclaims,networkpolicies,pods"

    left: list[str] = []

    def gone() -> bool:
        objs = cluster.kubectl("get", kinds, "-l", f"esenas.dev/job={job}", "-o", "name").stdout.split()
        jobs = [j for j in cluster.kubectl("get", "esj", "-o", "name").stdout.split() if j == f"esenasjob.esenas.dev/{job}"]
        procs = [f"process {p}" for p in cluster.processes().values() if p.startswith(f"default/{job}-")]
        left[:] = objs + jobs + procs
        return not left

    try:
        wait_for(gone, 60, f"everything of {job} deleted")
    except AssertionError as exc:  # name what is left, and why the runner thinks it is there
        raise AssertionError(f"{exc}; still there: {left}\n{cluster.runner.log()[-3000:]}") from None


def long_job(path: Path, name: str) -> Path:
    """The example, renamed, with no target reward, many iterations, frequent checkpoints on a PVC,
    and a short item timeout so the work of a killed worker is re-issued within seconds."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["stopping"] = {"maxIterations": 100_000}
    doc["spec"]["aggregator"] = {"checkpoint": {"everyIterations": 2, "storageSize": "1Gi"}}
    doc["spec"]["workers"]["itemTimeoutSeconds"] = 3
    path.write_text(yaml.safe_dump(doc))
    return path


def test_scale_kill_resume_metrics_and_delete(sim: tuple[SimCluster, OperatorProcess], tmp_path: Path) -> None:
    """2-4. Scale the fleet, survive a killed worker, resume a killed aggregator from its PVC,
    scrape its metrics with a real Prometheus, then delete the job and find nothing left."""
    cluster, _ = sim
    name = "pendulum-long"
    cluster.kubectl("apply", "-f", str(long_job(tmp_path / "job.yaml", name)))
    agg_pod = wait_for(lambda: next(iter(cluster.pods(selector(name, "aggregator"))), None), 30, "aggregator pod")
    http = wait_for(lambda: mapped_port(cluster.pods(selector(name, "aggregator"))[0], 9090), 30, "mapped metrics port")
    (tmp_path / "prometheus").mkdir()
    prom = Prometheus(tmp_path / "prometheus", {"esenas-aggregator": [f"127.0.0.1:{http}"]})
    try:
        wait_for(lambda: (esj(cluster, name).get("status") or {}).get("phase") == "Running", 60, "phase Running")

        # Scaling: the scale subresource reaches the worker Deployment and the runner's processes.
        for replicas in (3, 1):
            cluster.kubectl("scale", f"esj/{name}", f"--replicas={replicas}")
            wait_for(lambda r=replicas: len(job_processes(cluster, name, "worker")) == r,  # type: ignore[misc]
                     60, f"{replicas} worker processes")
            wait_for(lambda r=replicas: (esj(cluster, name).get("status") or {}).get("workers", {}).get("ready") == r,  # type: ignore[misc]
                     60, f"status.workers.ready == {replicas}")

        # A killed worker is restarted in its pod and the job keeps going.
        worker = cluster.pods(selector(name, "worker"))[0]
        pid = container_pid(worker)
        assert pid is not None
        before = http_json(http, "/status")["iteration"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: restart_count(cluster.pods(selector(name, "worker"))[0]) >= 1, 60, "worker restartCount 1")
        wait_for(lambda: http_json(http, "/status")["iteration"] >= before + 3, 60, "iterations after the worker kill")

        # A killed aggregator is restarted on the same claim and resumes from its checkpoint.
        status = wait_for(lambda: (s := http_json(http, "/status"))["iteration"] >= 6 and s, 60, "iteration 6")
        pid = container_pid(cluster.pods(selector(name, "aggregator"))[0])
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: restart_count(cluster.pods(selector(name, "aggregator"))[0]) >= 1, 60, "aggregator restartCount 1")
        resumed = wait_for(lambda: (s := http_json(http, "/status"))["resumedFrom"] is not None and s, 60, "resumed aggregator")
        assert resumed["resumedFrom"] >= status["iteration"] - 2, (status, resumed)
        assert resumed["iteration"] >= resumed["resumedFrom"] > 0
        wait_for(lambda: http_json(http, "/status")["iteration"] > resumed["iteration"], 60, "progress after resume")
        assert cluster.pods(selector(name, "aggregator"))[0]["metadata"]["uid"] == agg_pod["metadata"]["uid"]

        # Prometheus scraped the aggregator pod through its mapped port.
        series = wait_for(lambda: prom.query(f'esenas_iteration{{esenas_job="{name}"}}'), 60, "esenas_iteration in Prometheus")
        assert float(series[0]["value"][1]) > 0
        assert prom.query(f'max_over_time(esenas_workers_connected{{esenas_job="{name}"}}[1m])')
        # The worker image exchanges on a stream, and opened a new one to the restarted aggregator.
        wait_for(lambda: prom.query(f'esenas_exchange_streams_open{{esenas_job="{name}"}} >= 1'), 60,
                 "the worker's exchange stream to the restarted aggregator, in Prometheus")
    finally:
        prom.stop()
    cluster.kubectl("delete", f"esj/{name}", "--wait=true", "--timeout=90s")
    assert_nothing_left(cluster, name)


def test_a_job_with_relays_trains_through_them(sim: tuple[SimCluster, OperatorProcess], tmp_path: Path) -> None:
    """5. spec.relays: the operator runs a relay pod of the aggregator image, the workers dial its
    Service, and the job learns through it; the relay's log counts the rounds it handed in."""
    cluster, op = sim
    doc = yaml.safe_load(EXAMPLE.read_text())
    name = doc["metadata"]["name"] = "relayed"
    doc["spec"]["relays"] = {"replicas": 1}
    doc["spec"]["workers"]["batchSize"] = 2  # many small worker leases, one large relay lease per iteration
    doc["spec"]["stopping"] = {"maxIterations": 60}  # long enough to find its processes running
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(doc))
    cluster.kubectl("apply", "-f", str(tmp_path / "job.yaml"))
    wait_for(lambda: len(job_processes(cluster, name, "relay")) == 1 and len(job_processes(cluster, name, "worker")) == 2,
             60, "a relay process and two workers")
    if cluster.containers:
        assert_in_images(cluster, name, relays=1)
    worker = cluster.kubectl("get", "deploy", f"{name}-workers-0", "-o", "jsonpath={.spec.template.spec.containers[0].args}").stdout
    assert f"{name}-relays.default.svc:50051" in worker
    status = wait_for(lambda: (s := esj(cluster, name).get("status") or {}).get("phase") in ("Succeeded", "Failed") and s,
                      180, f"{name} finished")
    assert status["phase"] == "Succeeded", f"{status}\n{cluster.runner.log()[-3000:]}"
    assert status["iteration"] == 60 and status["bestReward"] >= 1000.0
    # The relay (its id: its pod's name) handed in whole iterations (8 pairs) per round, not the workers' 2.
    logs = sorted((cluster.workdir / "run" / "pods" / "default").glob(f"{name}-relays-*/relay.log"))
    done = wait_for(lambda: next((m for p in logs if (m := re.search(
        rf"relay ({name}-relays-\S+): the job is done after (\d+) rounds \((\d+) items\)", p.read_text()))), None),
        30, "the relay's last line")
    rounds, items = int(done.group(2)), int(done.group(3))
    assert rounds >= 60 and items >= doc["spec"]["es"]["perturbations"] * rounds, done.group(0)
    # The operator stops the relays with the rest of the fleet once the job is done.
    wait_for(lambda: cluster.kubectl("get", "deploy", f"{name}-relays", "-o", "jsonpath={.spec.replicas}").stdout == "0",
             60, "the finished job's relays scaled to 0")
    assert_token_nowhere(cluster, op, name)
    cluster.kubectl("delete", "esj", name, "--wait=true", "--timeout=60s")
    assert_nothing_left(cluster, name)
