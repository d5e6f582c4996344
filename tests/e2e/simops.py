"""The operator on a simulated cluster, shared by the end-to-end tests: the fake API server, the
pod runner (local processes or runc containers) and the real operator reaching Services through
the runner's proxy, with the checks every such test ends with."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from tests.integration.operator.opharness import OperatorProcess, env_without_proxy
from tests.simcluster.harness import SimCluster, proxy_env

URL_TEMPLATE: Final = "http://{name}-aggregator.{namespace}.svc:9090"  # the operator's default
PSA_ENFORCE: Final = "pod-security.kubernetes.io/enforce"
Obj = dict[str, Any]


@contextlib.contextmanager
def operator_on_sim(workdir: Path, *, containers: bool, restricted: str | None = "default") -> Iterator[
        tuple[SimCluster, OperatorProcess]]:
    """Start the cluster and the operator; ``restricted`` names a namespace that enforces the
    restricted Pod Security profile. On exit: the operator and the runner must have stayed up,
    and no pod process may outlive the runner."""
    cluster = SimCluster(workdir, containers=containers)
    env = {**env_without_proxy(), "KUBECONFIG": str(cluster.api.kubeconfig), **proxy_env(cluster.runner.proxy)}
    op = OperatorProcess(workdir, env, URL_TEMPLATE, interval=1.0)
    try:
        op.start()
        if restricted:
            restrict_pods(cluster, restricted)
        yield cluster, op
    finally:
        alive = op.alive()
        op.stop()
        runner_alive = cluster.runner.alive()
        cluster.stop()
        left = cluster.processes()
    assert alive, f"the operator exited:\n{op.log()[-3000:]}"
    assert runner_alive, f"the pod runner exited:\n{cluster.runner.log()[-3000:]}"
    assert not left, f"pod processes outlived the runner: {left}"


def restrict_pods(cluster: SimCluster, namespace: str) -> None:
    """Enforce the restricted Pod Security profile where the jobs run, as the product promises:
    the API server's PodSecurity admission then refuses any non-compliant pod the operator writes."""
    cluster.kubectl("label", "--overwrite", "namespace", namespace, f"{PSA_ENFORCE}=restricted")
    plain = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain", "namespace": namespace},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    refused = cluster.api.kubectl("apply", "--dry-run=server", "-f", "-", input=plain, check=False)
    assert refused.returncode != 0 and 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr


def job_processes(cluster: SimCluster, job: str, component: str) -> dict[int, str]:
    prefix = f"default/{job}-{ {'aggregator': 'aggregator', 'relay': 'relays'}.get(component, 'workers-') }"
    return {pid: pod for pid, pod in cluster.processes().items() if pod.startswith(prefix)}


def esj(cluster: SimCluster, name: str) -> Obj:
    return dict(json.loads(cluster.kubectl("get", "esj", name, "-o", "json").stdout))
