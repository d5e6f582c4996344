"""Default-CI learning check: the InvertedPendulum-v5 example reaches reward 1000.

Runs the real ``esenas run`` and ``esenas eval`` commands as processes (in-process trainer,
2 rollout workers), then checks the results folder and replays the saved policy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path("manifests/examples/inverted-pendulum.yaml")


def esenas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "import sys; from esenas_cli.main import main; sys.exit(main())", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_inverted_pendulum_example_reaches_1000(tmp_path: Path) -> None:
    out = tmp_path / "results"
    # MuJoCo writes MUJOCO_LOG.TXT into the working directory: keep it out of the repo
    run = esenas("run", str(EXAMPLE.resolve()), "--in-process", "--workers", "2", "--output", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"results: {out}" in run.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bestReward"] >= 1000, summary
    assert summary["task"] == "InvertedPendulum-v5"
    for name in ("policy.json", "reward_curve.png", "topology.png"):
        assert (out / name).stat().st_size > 0

    replay = esenas("eval", str(out), "--episodes", "5", cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr[-2000:]
    mean = float(replay.stdout.split("mean reward over 5 episodes: ")[1].split()[0])
    assert mean >= 950, replay.stdout
