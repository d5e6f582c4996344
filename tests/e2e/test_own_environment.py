"""A user's own environment in a cluster: the example package (examples/esenas-example-env)
built into worker and aggregator images with scripts/build-env-image.sh (the project's image
tooling, cached by input hash), then an ESENASJob that names those images, applied with the real
kubectl to the fake API server, reconciled by the real operator, and run by the simulated
cluster with every pod a runc container of those images, until it Succeeds at the job's stated
reward. Container mode only: with local processes (ESENAS_SIM_PROCESSES=1) no image is used.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
import yaml

from tests.e2e.simops import esj, job_processes, operator_on_sim
from tests.integration.operator.opharness import OperatorProcess
from tests.simcluster.harness import REPO, SimCluster, wait_for
from tests.simcluster.oci import Image, load_images
from tests.simcluster.test_containers import runc_usable

PACKAGE: Final = REPO / "examples" / "esenas-example-env"
#: Where pip put the package inside the images' venv.
INSTALLED: Final = "opt/esenas/lib/python3.11/site-packages/esenas_example_env/__init__.py"


@pytest.fixture(scope="module")
def env_images() -> dict[str, Image]:
    """The example's worker and aggregator images: built, or taken from the cache when unchanged."""
    if os.environ.get("ESENAS_SIM_PROCESSES") == "1":
        pytest.skip("ESENAS_SIM_PROCESSES=1 runs pods as local processes, which use no image")
    runc_usable()
    build = subprocess.run([str(REPO / "scripts" / "build-env-image.sh"), str(PACKAGE)], capture_output=True, text=True,
                           env={**os.environ, "PY": sys.executable}, timeout=1800, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    built = load_images()
    images = {img: built[f"esenas-example-env-{img}"] for img in ("worker", "aggregator")}
    for img, image in images.items():
        assert image.ref == f"localhost/esenas-example-env/{img}:0.1.0"
        assert (image.rootfs / INSTALLED).is_file(), f"{image.ref} lacks the package"
        assert image.config["User"] == "10001:10001" and image.config["Entrypoint"] == [f"esenas-{img}"], image.config
    return images


@pytest.fixture
def sim(tmp_path: Path, env_images: dict[str, Image]) -> Iterator[tuple[SimCluster, OperatorProcess]]:
    with operator_on_sim(tmp_path, containers=True) as sim:
        yield sim


def test_the_example_package_in_its_own_images_trains_to_its_stated_reward(
        sim: tuple[SimCluster, OperatorProcess], env_images: dict[str, Image]) -> None:
    cluster, op = sim
    doc = yaml.safe_load((PACKAGE / "job.yaml").read_text())
    target = doc["spec"]["stopping"]["targetReward"]
    assert doc["spec"]["environment"]["id"] == "esenas_example_env:PointMass-v0" and target == 150
    doc["spec"]["workers"] = {"replicas": 2, "image": env_images["worker"].ref}
    doc["spec"]["aggregator"] = {"image": env_images["aggregator"].ref}
    name = doc["metadata"]["name"]
    cluster.api.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))

    # Every pod of the job runs from the example's images: the package is in their root filesystem.
    procs = wait_for(lambda: (p := {**job_processes(cluster, name, "worker"), **job_processes(cluster, name, "aggregator")})
                     and len(p) == 3 and p, 90, f"the aggregator and two workers of {name}:\n{cluster.runner.log()[-2000:]}")
    for pid, pod in procs.items():
        image = env_images["aggregator" if "-aggregator-" in pod else "worker"]
        inside, built = os.stat(f"/proc/{pid}/root/{INSTALLED}"), os.stat(image.rootfs / INSTALLED)
        assert (inside.st_dev, inside.st_ino) == (built.st_dev, built.st_ino), (pod, image.ref)

    status = wait_for(lambda: (s := esj(cluster, name).get("status") or {}).get("phase") in ("Succeeded", "Failed") and s,
                      240, f"{name} finished:\n{op.log()[-2000:]}")
    assert status["phase"] == "Succeeded", f"{status}\n{cluster.runner.log()[-3000:]}"
    assert status["bestReward"] >= target, status
    assert status["iteration"] < doc["spec"]["stopping"]["maxIterations"], status
