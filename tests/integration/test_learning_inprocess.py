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


def test_a_discrete_task_learns_through_the_real_commands(tmp_path: Path) -> None:
    """CartPole-v1 (Discrete(2) actions, esenas.spaces) with the spec's defaults reaches 500;
    the run folder has its clip, and the saved policy replays at 500 and exports with how its
    scores become the action."""
    job = tmp_path / "cartpole.yaml"
    job.write_text(
        "apiVersion: esenas.dev/v1alpha1\nkind: ESENASJob\nmetadata: {name: cartpole}\n"
        "spec:\n  environment: {id: CartPole-v1}\n  stopping: {maxIterations: 30, targetReward: 500}\n"
    )
    out = tmp_path / "results"
    run = esenas("run", str(job), "--in-process", "--workers", "2", "--output", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bestReward"] == 500, summary
    assert (out / "video/episode.mp4").stat().st_size > 0, run.stdout  # classic control draws with pygame
    assert "with the task's own renderer)" in run.stdout  # not MuJoCo's MUJOCO_GL
    replay = esenas("eval", str(out), "--episodes", "5", cwd=tmp_path)
    assert "mean reward over 5 episodes: 500.0" in replay.stdout, replay.stdout + replay.stderr
    export = esenas("export", str(out), cwd=tmp_path)
    assert export.returncode == 0, export.stderr  # the dev install has the onnx extra
    assert "the task's action is the argmax of the 2 scores (Discrete(2))" in export.stdout
