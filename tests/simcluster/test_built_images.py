"""The three images `make images` built: numeric non-root user, OCI labels, no compilers or build
tools, and, run with runc (read-only root, user 10001, no capabilities), `pip check` passes and
the entry point starts."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.simcluster import oci
from tests.simcluster.test_containers import built, restricted  # noqa: F401  (the fixture)

NAMES = ("operator", "aggregator", "worker")
LABELS = ("title", "description", "version", "source", "licenses", "base.name")
BUILD_TOOLS = ("gcc", "cc", "c++", "g++", "clang", "make", "ld", "as", "cpp", "gfortran", "cargo", "rustc", "go")
ENTRY = {"operator": ["esenas-operator"], "aggregator": ["esenas-aggregator"], "worker": ["esenas-worker"]}


def run_once(image: oci.Image, argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """One container of the image as the operator's pods run: read-only root, user 10001, no
    capabilities, no_new_privs, a writable /tmp only."""
    pod_sc, sc = restricted()
    pod = {"metadata": {"name": "once"}, "spec": {"securityContext": pod_sc, "containers": []}}
    container = {"name": "c", "image": image.ref, "securityContext": sc}
    (tmp_path / "tmp").mkdir(parents=True, exist_ok=True)
    (tmp_path / "tmp").chmod(0o777)
    cid = f"once-{uuid.uuid4().hex[:12]}"  # cgroups are host-wide
    spec = oci.runtime_spec(pod, container, image, argv, {**image.env, "HOME": "/tmp"}, "/tmp",
                            [oci.Mount("/tmp", str(tmp_path / "tmp"), False)], image.rootfs, {}, f"/simcluster-{cid}")
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "config.json").write_text(json.dumps(spec))
    return subprocess.run(["runc", "--root", str(tmp_path / "state"), "run", "--bundle", str(bundle), cid],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("name", NAMES)
def test_image_config_user_labels_and_no_build_tools(built: dict[str, oci.Image], name: str) -> None:  # noqa: F811
    image = built[name]
    assert image.user == "10001:10001", "a numeric non-root user, so runAsNonRoot can verify it"
    labels = image.config.get("Labels") or {}
    missing = [k for k in LABELS if not labels.get(f"org.opencontainers.image.{k}")]
    assert not missing, f"{name}: OCI labels missing: {missing}"
    assert labels["org.opencontainers.image.title"] == f"esenas-{name}"
    found = [t for t in BUILD_TOOLS for d in ("usr/bin", "usr/local/bin", "opt/esenas/bin") if (image.rootfs / d / t).exists()]
    assert not found, f"{name}: build tools in the final image: {found}"
    site = next((image.rootfs / "opt" / "esenas" / "lib").glob("python3*/site-packages"))
    assert not list(site.glob("setuptools*")), f"{name}: setuptools left in the venv"


@pytest.mark.parametrize("name", NAMES)
def test_pip_check_and_entry_point_inside_the_image(built: dict[str, oci.Image], name: str, tmp_path: Path) -> None:  # noqa: F811
    image = built[name]
    assert image.entrypoint == ENTRY[name]
    check = run_once(image, ["/opt/esenas/bin/pip", "check"], tmp_path / "check")
    assert check.returncode == 0 and "No broken requirements found." in check.stdout, check.stdout + check.stderr
    helped = run_once(image, [*image.entrypoint, "--help"], tmp_path / "help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage:"), helped.stdout + helped.stderr
