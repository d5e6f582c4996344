"""``esenas fetch``: a stored cluster result becomes the folder ``esenas run`` writes, and every way
it cannot (no job, no access, not finished, Failed, damaged chunks) is one line with what to do."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from esenas.algorithm import ESENAS
from esenas.results import Results
from esenas.run_summary import summary
from esenas.spec import load_job
from esenas_cli import fetch_cmd
from esenas_cli.fetch_cmd import EXIT_NOT_FINISHED, FetchError, fetch
from esenas_cli.kubectl import Kubectl, KubectlError
from esenas_cli.main import main
from esenas_cli.results_dir import write_results
from esenas_operator.results import build_result

REPO = Path(__file__).resolve().parents[3]
JOB = load_job(REPO / "manifests/examples/inverted-pendulum.yaml")
NAME, NS = "inverted-pendulum", "rl"


def trained() -> ESENAS:
    algo = ESENAS(JOB.spec, 4, 1)
    for _ in range(2):
        plan = algo.ask()
        n = len(plan.items)
        algo.tell(Results(plan.items["index"], np.linspace(1, 2, n), np.zeros(n), np.full(n, 10, np.uint32),
                          0.0, np.zeros(4), np.zeros(4)))
    return algo


class Cluster:
    """Stands in for kubectl: objects by (resource, namespace, name); ``stderr`` fails every call."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.stderr = ""
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        if self.stderr:
            return subprocess.CompletedProcess(argv, 1, "", self.stderr)
        ns = next((a.split("=", 1)[1] for a in argv if a.startswith("--namespace=")), "default")
        i = argv.index("get")
        key = (argv[i + 1], ns, argv[i + 2])
        if key not in self.objects:
            return subprocess.CompletedProcess(argv, 1, "", f'Error from server (NotFound): {key[0]} "{key[2]}" not found\n')
        return subprocess.CompletedProcess(argv, 0, json.dumps(self.objects[key]), "")

    def add_job(self, phase: str, **status: Any) -> dict[str, Any]:
        body = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob",
                "metadata": {"name": NAME, "namespace": NS, "uid": "u-1"}, "status": {"phase": phase, **status}}
        self.objects[(fetch_cmd.JOBS, NS, NAME)] = body
        return body

    def store(self, body: dict[str, Any], algo: ESENAS, *, complete: bool = True) -> dict[str, Any]:
        files = {"summary.json": json.dumps(summary(algo, JOB, "max iterations 2 reached", 1.5)),
                 "policy.json": json.dumps(algo.best_policy()), "history.json": json.dumps(algo.history)}
        objs, result = build_result(body, files, complete=complete)
        for obj in objs:
            self.objects[("configmap", NS, obj["metadata"]["name"])] = obj
        body["status"]["result"] = result
        return result


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def kubectl(cluster: Cluster, namespace: str | None = NS) -> Kubectl:
    return Kubectl(namespace=namespace, run=cluster)


def test_a_succeeded_job_gives_the_folder_esenas_run_writes(cluster: Cluster, tmp_path: Path) -> None:
    algo = trained()
    cluster.store(cluster.add_job("Succeeded"), algo)
    info = fetch(kubectl(cluster), NAME, tmp_path / "fetched")
    write_results(tmp_path / "local", algo, JOB, "max iterations 2 reached", 1.5)
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == ["history.json", "policy.json", "reward_curve.png", "summary.json", "topology.png"]
    assert sorted(p.name for p in (tmp_path / "fetched").iterdir()) == names
    local = json.loads((tmp_path / "local" / "summary.json").read_text())
    assert list(info) == list(local) and info == local
    for doc in ("policy.json", "history.json", "summary.json"):
        assert (tmp_path / "fetched" / doc).read_text() == (tmp_path / "local" / doc).read_text()
    assert (tmp_path / "fetched" / "topology.png").stat().st_size > 1000


def test_the_cli_prints_where_the_folder_is(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cluster.store(cluster.add_job("Succeeded"), trained())
    monkeypatch.setattr(fetch_cmd, "Kubectl", lambda **kw: Kubectl(**kw, run=cluster))
    assert main(["fetch", NAME, "-n", NS, "-o", str(tmp_path / "out")]) == 0
    assert f"results: {tmp_path / 'out'}" in capsys.readouterr().out
    assert main(["fetch", NAME, "-n", NS, "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'out'} already holds a result; pick another --output\n"
    assert all("--namespace=rl" in call for call in cluster.calls)


def test_without_namespace_kubectl_picks_it_and_the_rest_follows_the_job(cluster: Cluster, tmp_path: Path) -> None:
    body = cluster.add_job("Succeeded")
    cluster.store(body, trained())
    cluster.objects[(fetch_cmd.JOBS, "default", NAME)] = body  # kubectl's current namespace finds it
    fetch(kubectl(cluster, None), NAME, tmp_path / "out")
    assert not any(a.startswith("--namespace") for a in cluster.calls[0])
    assert all("--namespace=rl" in call for call in cluster.calls[1:])


def test_no_such_job(cluster: Cluster, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="no ESENASJob 'inverted-pendulum' in namespace 'rl'"):
        fetch(kubectl(cluster), NAME, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("stderr", "says"), [
    ('Error from server (Forbidden): esenasjobs.esenas.dev "x" is forbidden: User "dev" cannot get resource',
     "no access: your kubeconfig's user may not read esenasjobs.esenas.dev 'inverted-pendulum' in namespace 'rl'"),
    ("error: You must be logged in to the server (Unauthorized)", "no access: the cluster refused your credentials"),
    ('error: the server doesn\'t have a resource type "esenasjobs"', "this cluster has no ESENASJob resource"),
    ("Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout", "cannot reach the cluster"),
    # kubectl 1.3x without a cluster: its client log first, its own summary last
    ('E1205 15:26:24.691233   17664 memcache.go:265] "Unhandled Error" err="couldn\'t get current server API group list: '
     'Get \\"http://localhost:8080/api?timeout=32s\\": dial tcp 127.0.0.1:8080: connect: connection refused"\n'
     "The connection to the server localhost:8080 was refused - did you specify the right host or port?",
     "cannot reach the cluster: The connection to the server localhost:8080 was refused - did you specify the right host or port?"),
])
def test_kubectl_failures_are_one_line_that_says_what_to_do(cluster: Cluster, tmp_path: Path, stderr: str, says: str) -> None:
    cluster.stderr = stderr + "\nmore detail\n"
    with pytest.raises(KubectlError) as info:
        fetch(kubectl(cluster), NAME, tmp_path / "out")
    assert str(info.value).startswith(says) and "\n" not in str(info.value)


def test_a_running_job_says_its_phase_and_how_to_wait(cluster: Cluster, tmp_path: Path) -> None:
    cluster.add_job("Running", iteration=12, bestReward=40.5)
    with pytest.raises(FetchError) as info:
        fetch(kubectl(cluster), NAME, tmp_path / "out")
    assert info.value.code == EXIT_NOT_FINISHED
    assert str(info.value) == ("rl/inverted-pendulum is Running, iteration 12, best reward 40.5: its result is stored "
                               "when it finishes; wait with kubectl wait --for=jsonpath='{.status.phase}'=Succeeded "
                               "esj/inverted-pendulum -n rl")
    cluster.add_job("Suspended")
    with pytest.raises(FetchError, match="is Suspended: its result is stored when it finishes"):
        fetch(kubectl(cluster), NAME, tmp_path / "out")


def test_a_failed_job_offers_its_partial_result(cluster: Cluster, tmp_path: Path) -> None:
    body = cluster.add_job("Failed", reason="DeadlineExceeded", message="ran longer than 60 s")
    with pytest.raises(FetchError, match=r"Failed \(DeadlineExceeded: ran longer than 60 s\); no partial result was kept"):
        fetch(kubectl(cluster), NAME, tmp_path / "out")
    cluster.store(body, trained(), complete=False)
    with pytest.raises(FetchError, match="its best result before it stopped is stored: add --partial to fetch it"):
        fetch(kubectl(cluster), NAME, tmp_path / "out")
    info = fetch(kubectl(cluster), NAME, tmp_path / "out", partial=True)
    assert info["iterations"] == 2 and (tmp_path / "out" / "policy.json").exists()


def test_a_missing_chunk_is_named_and_nothing_is_written(cluster: Cluster, tmp_path: Path) -> None:
    result = cluster.store(cluster.add_job("Succeeded"), trained())
    del cluster.objects[("configmap", NS, "inverted-pendulum-result-0")]
    with pytest.raises(FetchError, match=r"damaged: incomplete result: 1 of 1 chunks missing \(inverted-pendulum-result-0\)"):
        fetch(kubectl(cluster), NAME, tmp_path / "out")
    assert result["chunks"] == 1 and not (tmp_path / "out").exists()


def test_a_chunk_of_another_result_is_a_digest_error(cluster: Cluster, tmp_path: Path) -> None:
    body = cluster.add_job("Succeeded")
    cluster.store(body, trained())
    stale = cluster.objects[("configmap", NS, "inverted-pendulum-result-0")]
    cluster.store(body, ESENAS(JOB.spec, 4, 1))  # a second write (another result) ...
    cluster.objects[("configmap", NS, "inverted-pendulum-result-0")] = stale  # ... whose chunk is the old one
    with pytest.raises(FetchError, match="belong"):
        fetch(kubectl(cluster), NAME, tmp_path / "out")


def test_a_deleted_result_configmap(cluster: Cluster, tmp_path: Path) -> None:
    cluster.store(cluster.add_job("Succeeded"), trained())
    del cluster.objects[("configmap", NS, "inverted-pendulum-result")]
    with pytest.raises(FetchError, match="its result ConfigMap 'inverted-pendulum-result' is gone"):
        fetch(kubectl(cluster), NAME, tmp_path / "out")


def test_a_result_that_was_not_stored_says_why(cluster: Cluster, tmp_path: Path) -> None:
    cluster.add_job("Succeeded", result={"configMap": "", "message": "not stored: the result is 99 bytes"})
    with pytest.raises(FetchError, match="Succeeded, but its result was not stored: not stored: the result is 99 bytes"):
        fetch(kubectl(cluster), NAME, tmp_path / "out")
