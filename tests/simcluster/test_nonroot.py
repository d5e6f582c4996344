"""The simulated kubelet's runAsNonRoot check: the effective runAsUser, else the image's USER from
its Dockerfile, must be numeric and non-zero, or the container waits in CreateContainerConfigError
with the real kubelet's message; the project's images run as a numeric non-root user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakekube.harness import FakeKube
from tests.simcluster import images
from tests.simcluster.harness import RunnerProcess, container_pid, pod_processes, wait_for
from tests.simcluster.kubelet import verify_run_as_non_root
from tests.simcluster.podspec import PodConfigError

Obj = dict[str, Any]


def pod(pod_sc: Obj, container_sc: Obj | None = None, image: str = "busybox", name: str = "p") -> Obj:
    c: Obj = {"name": "main", "image": image, "command": ["python", "-c", "import time; time.sleep(60)"]}
    if container_sc is not None:
        c["securityContext"] = container_sc
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "uid": "u1"},
            "spec": {"securityContext": pod_sc, "containers": [c], "restartPolicy": "Never"}}


def refusal(p: Obj, image_user: str | None) -> str:
    with pytest.raises(PodConfigError) as err:
        verify_run_as_non_root(p, p["spec"]["containers"][0], image_user)
    assert err.value.reason == "CreateContainerConfigError" and not err.value.retry
    return err.value.message


def test_dockerfile_user_of_the_final_stage() -> None:
    assert images.dockerfile_user("FROM a AS b\nUSER 5\nFROM c\nRUN x\n") == ""
    assert images.dockerfile_user("FROM a\nUSER app\nUSER 10001:10001\n") == "10001:10001"
    for repo in ("worker", "aggregator", "operator"):
        user = images.image_user(f"ghcr.io/esenas/{repo}:0.1.0")
        assert user is not None and user.split(":")[0].isdigit() and user.split(":")[0] != "0", (repo, user)
    assert images.image_user("busybox:1.36") is None


def test_root_images_and_users_are_refused_with_the_kubelets_words() -> None:
    where = '(pod: "p_default(u1)", container: main)'
    assert refusal(pod({"runAsNonRoot": True}), "") == f"container has runAsNonRoot and image will run as root {where}"
    assert refusal(pod({"runAsNonRoot": True}), "0:0").startswith("container has runAsNonRoot and image will run as root")
    assert refusal(pod({"runAsNonRoot": True}), "app") == (
        f"container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root {where}")
    assert refusal(pod({"runAsNonRoot": True}, {"runAsUser": 0}), "10001") == (
        f"container's runAsUser breaks non-root policy {where}")


def test_non_root_settings_pass() -> None:
    cases = [(pod({}), ""), (pod({"runAsNonRoot": True}, {"runAsNonRoot": False}), ""),
             (pod({"runAsNonRoot": True, "runAsUser": 1000}), ""),
             (pod({}, {"runAsNonRoot": True, "runAsUser": 7}), "app"),
             (pod({"runAsNonRoot": True}), "10001:10001"), (pod({"runAsNonRoot": True}), None)]
    for p, user in cases:
        verify_run_as_non_root(p, p["spec"]["containers"][0], user)


@pytest.fixture
def runner(fakekube: FakeKube, tmp_path: Path) -> Iterator[RunnerProcess]:
    r = RunnerProcess(tmp_path, fakekube.kubeconfig)
    yield r
    r.stop()
    assert not pod_processes(str((tmp_path / "run").resolve())), "processes outlived the runner"


def test_runner_waits_a_root_container_and_runs_a_project_image_as_non_root(
        fakekube: FakeKube, runner: RunnerProcess) -> None:
    pods = "/api/v1/namespaces/default/pods"
    fakekube.client.create(pods, pod({"runAsNonRoot": True}, {"runAsUser": 0}, name="as-root"))
    fakekube.client.create(pods, pod({"runAsNonRoot": True}, image="ghcr.io/esenas/worker:0.1.0", name="as-image-user"))
    waiting = wait_for(lambda: next((c["state"].get("waiting") for c in
                                     (fakekube.client.get(f"{pods}/as-root").get("status") or {})
                                     .get("containerStatuses") or ()), None), 30, "as-root waiting")
    assert waiting["reason"] == "CreateContainerConfigError", waiting
    assert waiting["message"].startswith("container's runAsUser breaks non-root policy"), waiting
    wait_for(lambda: container_pid(fakekube.client.get(f"{pods}/as-image-user")), 30, "as-image-user running")
