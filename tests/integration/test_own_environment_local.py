"""A user's own environment package, locally: pip-installed into a fresh venv, then trained by
`esenas run` on its job to the job's stated reward; before the install, the same command fails
with the one line that names the missing module (the aggregator's termination message).

The venv is new and empty (no --system-site-packages); a startup hook adds this checkout's venv
as a further site directory, so that esenas and its pinned dependencies need no download, while
the example package is really installed by pip (--no-deps, --no-index, offline), into the new
venv only: the project's own venv cannot import it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Final

import pytest
import yaml

REPO: Final = Path(__file__).resolve().parents[2]
EXAMPLE: Final = REPO / "examples" / "esenas-example-env"
MODULE: Final = "esenas_example_env"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = Path(subprocess.run([str(root / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # Lines of a .pth file that start with "import" run at startup; addsitedir also reads the
    # project venv's own .pth files (its editable install of esenas).
    (site / "zz_esenas_project.pth").write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    return root


def _esenas(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "python"), "-m", "esenas_cli.main", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_example_package_pip_installed_in_a_fresh_venv_trains_to_its_stated_reward(venv: Path, tmp_path: Path) -> None:
    job = EXAMPLE / "job.yaml"
    spec = yaml.safe_load(job.read_text())["spec"]
    target = spec["stopping"]["targetReward"]
    assert spec["environment"]["id"] == f"{MODULE}:PointMass-v0" and target == 150
    assert subprocess.run([sys.executable, "-c", f"import {MODULE}"], capture_output=True).returncode != 0, (
        "the project venv must not see the example: the test is about installing it")

    # Not installed yet: one line, the aggregator's, naming the module; no traceback.
    missing = _esenas(venv, "run", str(job), "--workers", "1", "--output", str(tmp_path / "missing"), cwd=tmp_path)
    assert missing.returncode == 2, missing.stderr
    assert missing.stderr.splitlines() == [
        f"error: spec.environment.id: environment '{MODULE}:PointMass-v0' (module {MODULE}, id PointMass-v0): cannot "
        f"import module {MODULE}: ModuleNotFoundError: No module named '{MODULE}'"]

    # From a copy: setuptools builds in the source tree, and the checkout stays as it was.
    package = shutil.copytree(EXAMPLE, tmp_path / "package", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    pip = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                          "--no-build-isolation", "--no-index", "--no-cache-dir", "--quiet", str(package)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    where = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {MODULE}; print({MODULE}.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the installed copy, not a source tree

    out = tmp_path / "run"
    run = _esenas(venv, "run", str(job), "--workers", "1", "--output", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == f"{MODULE}:PointMass-v0"
    assert summary["stopReason"].startswith(f"target reward {target} reached"), summary
    assert summary["bestReward"] >= target
    assert summary["topology"] == "dense" and summary["iterations"] < spec["stopping"]["maxIterations"]
    # it learned: on new episodes it scores far above standing still (-14), near the PD controller (177)
    assert summary["freshEval"]["mean"] >= 100, summary["freshEval"]
    # Its bests were adopted (bestReward above) after the aggregator's replays, which imported the
    # package too and repeated the episodes from their seeds: `esenas run` logs the aggregator's
    # warnings, and neither a failed replay nor a corrected best is among them.
    log = (out / "logs" / "aggregator.log").read_text()
    assert "could not replay" not in log and "replaying its items" not in log, log[-3000:]

    # The class form with kwargs, from the same installed package and the same job otherwise.
    doc = yaml.safe_load(job.read_text())
    doc["spec"]["environment"] = {"id": f"{MODULE}:PointMassEnv", "kwargs": {"damping": 0.2}, "maxEpisodeSteps": 200}
    class_job = tmp_path / "class.yaml"
    class_job.write_text(yaml.safe_dump(doc))
    run = _esenas(venv, "run", str(class_job), "--workers", "1", "--in-process", "--output", str(tmp_path / "class"), cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / "class" / "summary.json").read_text())
    assert summary["task"] == f"{MODULE}:PointMassEnv" and summary["bestReward"] >= target, summary
