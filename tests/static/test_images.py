"""The images without Docker: for each image, a clean venv gets exactly its Dockerfile's install
(requirements/<image>.txt --no-deps, then esenas-core and the deployable --no-deps) and its
ENTRYPOINT runs --help. This proves each lock is complete (pip check), each entry point imports
only what its image has, and no image holds another layer's package (the CLI included)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.static.chart_tools import REPO, run

IMAGES = {  # image -> (Dockerfile folder, entry point argv)
    "worker": ("worker_image", ["esenas-worker"]),
    "aggregator": ("aggregator", ["esenas-aggregator"]),
    "operator": ("operator", ["esenas-operator"]),
}
#: Packages that must stay out of an image: the operator never runs rollouts.
FORBIDDEN = {"operator": {"mujoco", "gymnasium", "grpcio"}, "worker": {"kopf", "kubernetes"},
             "aggregator": {"kopf", "kubernetes"}}
#: The distributions of this repository (one pyproject.toml each) and the image that holds each.
DISTRIBUTIONS = {"core": "esenas-core", "aggregator": "esenas-aggregator", "worker_image": "esenas-worker",
                 "operator": "esenas-operator", "cli": "esenas-cli"}


def _pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line, names normalised (PEP 503)."""
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m[1]).lower()] = m[2]
    return pins


def _pyproject_pins() -> dict[str, str]:
    """name -> version of every pin in the distributions' pyproject files (one version each)."""
    pins: dict[str, str] = {}
    for folder in DISTRIBUTIONS:
        text = (REPO / folder / "pyproject.toml").read_text()
        for n, v in re.findall(r'"([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?==([^"]+)"', text):
            name = re.sub(r"[-_.]+", "-", n).lower()
            assert pins.setdefault(name, v) == v, f"{name} is pinned to {pins[name]} and {v} in the pyproject files"
    return pins


@pytest.mark.parametrize("image", IMAGES)
def test_lock_agrees_with_pyproject_and_its_in_file(image: str) -> None:
    direct = _pins(REPO / "requirements" / f"{image}.in")
    lock = _pins(REPO / "requirements" / f"{image}.txt")
    project = _pyproject_pins()
    for name, version in direct.items():
        assert project.get(name) == version, f"requirements/{image}.in pins {name}=={version}, pyproject {project.get(name)}"
        assert lock.get(name) == version, f"requirements/{image}.txt is stale for {name}: run scripts/lock-requirements.sh"
    assert not FORBIDDEN[image] & set(lock), f"{image} image must not contain {FORBIDDEN[image] & set(lock)}"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each distribution built once as a wheel, as `pip install --no-deps /src/...` does inside
    the Dockerfiles; folder -> wheel."""
    out = tmp_path_factory.mktemp("wheels")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
         *(str(REPO / folder) for folder in DISTRIBUTIONS)])
    return {folder: next(out.glob(f"{dist.replace('-', '_')}-*.whl")) for folder, dist in DISTRIBUTIONS.items()}


@pytest.mark.parametrize("image", IMAGES)
def test_image_install_runs_its_entry_point(image: str, wheels: dict[str, Path], tmp_path: Path) -> None:
    folder, entry = IMAGES[image]
    dockerfile = (REPO / folder / "Dockerfile").read_text()
    assert f"COPY requirements/{image}.txt /tmp/requirements.txt" in dockerfile
    assert "pip install --no-deps -r /tmp/requirements.txt" in dockerfile
    assert f'/src/core /src/{folder} && /opt/esenas/bin/pip check' in dockerfile
    assert {m for m in re.findall(r"^COPY (\S+) /src/", dockerfile, re.M)} == {"core", folder}
    venv = tmp_path / "venv"
    # Speed, not semantics: the venv gets no pip of its own (the outer pip installs into it via
    # --python) and no .pyc compilation, which is most of the time for kubernetes and mujoco.
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(venv / "bin" / "python")]
    install = [*pip, "install", "--quiet", "--no-compile", "--no-deps"]
    run([*install, "-r", str(REPO / "requirements" / f"{image}.txt")])
    run([*install, str(wheels["core"]), str(wheels[folder])])
    run([*pip, "check"])
    installed = {re.sub(r"[-_.]+", "-", n).lower() for n in
                 re.findall(r"^([A-Za-z0-9_.-]+)==", run([*pip, "freeze"]).stdout, re.M)}
    assert not FORBIDDEN[image] & installed
    others = set(DISTRIBUTIONS.values()) - {"esenas-core", DISTRIBUTIONS[folder]}
    assert not others & installed, f"the {image} image holds {others & installed}"
    # Run from an empty folder so nothing from the source tree is importable.
    proc = run([str(venv / "bin" / entry[0]), *entry[1:], "--help"], cwd=tmp_path)
    assert proc.stdout.startswith("usage:"), proc.stdout
