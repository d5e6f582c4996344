"""A job whose aggregator cannot start, end to end: the real kubectl applies it to the fake API
server, the real operator writes its children, and the simulated cluster's pod runner runs the
real aggregator (`esenas aggregator`, local processes), which fails to import its `module:Class`
environment and restarts until the operator Fails the job with reason AggregatorCrashLoop and a
message that quotes the import error (terminationMessagePolicy: FallbackToLogsOnError).

Local processes, not containers: what is under test is the operator's reading of a real
aggregator's exits, restarts and termination message, which the runner reports the same way in
both modes (container mode needs `make images`; tests/e2e/test_full_system.py covers it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from tests.e2e.simops import operator_on_sim
from tests.integration.operator.opharness import OperatorProcess
from tests.simcluster.harness import REPO, SimCluster, restart_count, wait_for

EXAMPLE: Final = REPO / "manifests" / "examples" / "inverted-pendulum.yaml"
JOBS: Final = "/apis/esenas.dev/v1alpha1/namespaces/default/esenasjobs"
#: A module no image has: the aggregator's import of the environment fails at start.
MISSING: Final = "esenas_no_such_envs:Pendulum"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[SimCluster, OperatorProcess]]:
    with operator_on_sim(tmp_path, containers=False, restricted=None) as sim:
        yield sim


def _status(cluster: SimCluster, name: str) -> dict[str, Any]:
    return dict(cluster.api.client.get(f"{JOBS}/{name}").get("status") or {})


def test_an_aggregator_that_cannot_import_its_environment_fails_the_job_naming_the_error(
        sim: tuple[SimCluster, OperatorProcess]) -> None:
    cluster, op = sim
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = "crash"
    doc["spec"]["environment"] = {"id": MISSING}
    doc["spec"]["workers"]["replicas"] = 1
    doc["spec"]["backoffLimit"] = 1
    cluster.api.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    # The aggregator pod really runs, exits and is restarted by the runner.
    selector = "esenas.dev/job=crash,app.kubernetes.io/component=aggregator"
    wait_for(lambda: any(restart_count(p) >= 1 for p in cluster.pods(selector)), 120, "the aggregator restarting")
    st = wait_for(lambda: (s := _status(cluster, "crash")).get("phase") == "Failed" and s, 180,
                  f"the job Failed:\n{op.log()[-2000:]}\n{cluster.runner.log()[-2000:]}")
    assert st["reason"] == "AggregatorCrashLoop", st
    message = st["message"]
    # The cause first (the traceback's last line), then the termination message it came from.
    assert message.startswith("the aggregator restarted "), message
    # The aggregator's one line (esenas.envload, the same line `esenas run` prints) is its log's last.
    assert ("(spec.backoffLimit 1): spec.environment.id: environment 'esenas_no_such_envs:Pendulum' (module "
            "esenas_no_such_envs, class Pendulum): cannot import module esenas_no_such_envs: ModuleNotFoundError: "
            "No module named 'esenas_no_such_envs'; its last termination message: ") in message, message
    assert "Traceback (most recent call last)" in message, message
    (failed,) = [c for c in st["conditions"] if c["type"] == "Failed"]
    assert (failed["status"], failed["reason"]) == ("True", "AggregatorCrashLoop") and "No module named" in failed["message"]
    # kopf posts events from a background queue, after the status patch: wait for it, as kubectl would
    events = wait_for(lambda: [e for e in cluster.api.client.list("/api/v1/namespaces/default/events")
                               if e["involvedObject"]["name"] == "crash" and e["reason"] == "AggregatorCrashLoop"],
                      30, "the AggregatorCrashLoop event")
    assert events[0]["type"] == "Warning" and "No module named 'esenas_no_such_envs'" in events[0]["message"]
    cluster.api.kubectl("wait", "esj/crash", "--for=condition=Failed", "--timeout=10s")
    # The fleet is stopped: every Deployment at 0, and the workers count 0/0.
    deployments = cluster.api.client.list("/apis/apps/v1/namespaces/default/deployments", labelSelector="esenas.dev/job=crash")
    assert deployments and all(d["spec"]["replicas"] == 0 for d in deployments)
    assert st["workers"]["summary"] == "0/0"
    assert op.alive()
