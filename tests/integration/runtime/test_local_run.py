"""``esenas run`` with real local processes: results folder, Ctrl-C checkpoints, --resume continues."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from esenas_cli.errors import EXIT_FAILED

from tests.integration.runtime.procs import REPO, write_failing_env, write_job

CLI = [sys.executable, "-c", "import sys; from esenas_cli.main import main; sys.exit(main())"]


def _status(out: Path) -> dict[str, object]:
    import urllib.request

    ports = json.loads((out / ".ports.json").read_text())
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['http']}/status", timeout=5) as r:
        return dict(json.loads(r.read()))


def test_run_ctrl_c_checkpoints_then_resume_finishes(tmp_path: Path) -> None:
    job = write_job(tmp_path, **{"stopping.targetReward": 1e9, "stopping.maxIterations": 25, "aggregator.checkpoint.everyIterations": 1000})
    out = tmp_path / "run"
    cmd = [*CLI, "run", str(job), "--workers", "2", "--output", str(out)]
    p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    end = time.monotonic() + 90
    it = 0
    while time.monotonic() < end:
        try:
            it = int(_status(out)["iteration"])  # type: ignore[call-overload]
            if it >= 3:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    assert it >= 3, "run never reached iteration 3"
    p.send_signal(signal.SIGINT)
    text = p.communicate(timeout=90)[0].decode()
    assert p.returncode == 130, text
    assert "resume with" in text
    ckpts = sorted((out / "checkpoints").glob("ckpt-*.esck"))
    stopped_at = int(ckpts[-1].stem.split("-")[1])
    assert stopped_at >= 3  # checkpoint written on Ctrl-C, although everyIterations is 1000
    # gRPC over TLS on 127.0.0.1 too: a per-run certificate, the key readable by its owner only.
    assert (out / ".tls/tls.key").stat().st_mode & 0o777 == 0o600
    assert "plaintext" not in next(out.rglob("aggregator.log")).read_text()

    r = subprocess.run([*cmd, "--resume"], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"resuming from iteration {stopped_at} (ckpt-{stopped_at:010d}.esck" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 25
    for name in ("policy.json", "reward_curve.png", "topology.png", "history.json"):
        assert (out / name).stat().st_size > 0
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 25  # one entry per iteration: resumed, not restarted

    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "--resume" in again.stderr


@pytest.mark.parametrize("runtime", [["--workers", "1"], ["--in-process", "--workers", "2"]], ids=["processes", "in-process"])
def test_the_deadline_stops_the_run_mid_iteration_and_it_succeeds(tmp_path: Path, runtime: list[str]) -> None:
    # One iteration is 4,000 Swimmer episodes of 1,000 steps, minutes on any machine; a deadline
    # of 3 s ends it within that iteration, as a success, not once the iteration is done.
    job = write_job(tmp_path, **{"environment.id": "Swimmer-v5", "es.perturbations": 2000, "es.topDirections": 0,
                                 "stopping.deadlineSeconds": 3, "stopping.targetReward": 1e9})
    out = tmp_path / "run"
    r = subprocess.run([*CLI, "run", str(job), *runtime, "--output", str(out), "--no-video", "--fresh-episodes", "1"],
                       cwd=REPO, capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stopped: deadline of 3 s reached" in r.stdout, r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["stopReason"], summary["iterations"]) == ("deadline of 3 s reached", 0)


def test_trials_run_one_after_another_in_real_processes_and_the_best_goes_on(tmp_path: Path) -> None:
    # InvertedPendulum episodes are short at first: ~1,000 steps per iteration of 8 pairs and 8 exact evals.
    job = write_job(tmp_path, **{"trials.count": 3, "trials.envSteps": 1500, "stopping.maxIterations": 14, "stopping.targetReward": 1e9})
    out = tmp_path / "run"
    r = subprocess.run([*CLI, "run", str(job), "--workers", "2", "--output", str(out), "--no-video", "--fresh-episodes", "1"],
                       cwd=REPO, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    history = json.loads((out / "history.json").read_text())
    trials = [h["trial"] for h in history]
    assert len(trials) == 14 and trials[0] == 1
    ends = [i for i in range(1, 14) if trials[i] != trials[i - 1]]
    assert [trials[i - 1] for i in ends[:2]] == [1, 2], trials  # trial 1, then 2, then 3, then the kept one
    assert trials.count(3) >= 1 and trials[-1] in (1, 2, 3), trials
    steps = [h["total_env_steps"] for h in history]
    assert all(steps[i - 1] >= 1500 * n for n, i in enumerate(ends[:2], start=1)), (steps, ends)
    # a line marks each change of trial (the progress bar polls /status, so one may hide another)
    assert "trial 1/3 ended by " in r.stdout, r.stdout
    assert f"env steps; now trial {trials[-1]} of 3 kept" in r.stdout, r.stdout


def test_returns_beyond_max_abs_reward_fail_the_run_naming_the_field(tmp_path: Path) -> None:
    # InvertedPendulum's first episodes return 3 to 50: above a bound of 2, two honest workers agree.
    job = write_job(tmp_path, **{"environment.maxAbsReward": 2.0, "stopping.maxIterations": 5})
    r = subprocess.run([*CLI, "run", str(job), "--workers", "2", "--output", str(tmp_path / "run")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error: the job failed before its first iteration: RewardOutOfBounds: spec.environment.maxAbsReward" in r.stderr
    assert "beyond 2 " in r.stderr and "Raise spec.environment.maxAbsReward" in r.stderr
    assert "; the aggregator's own replay of it went wrong too: reward bound (" in r.stderr
    assert not (tmp_path / "run" / "policy.json").exists()  # nothing trained: no result of the initial policy


def _run_failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, *flags: str, **overrides: object) -> subprocess.CompletedProcess[str]:
    """``esenas run`` (with ``flags``) on a job whose environment is ``failing_env:ENV`` (procs.FAILING_ENV)."""
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    job = write_job(tmp_path, **{"environment.id": f"{write_failing_env(tmp_path)}:{env}", "stopping.maxIterations": 5, **overrides})
    return subprocess.run([*CLI, "run", str(job), *flags, "--workers", "2", "--output", str(tmp_path / "run")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_an_environment_that_raises_mid_episode_fails_the_run_with_its_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each worker reports the item instead of dying; the second worker's report confirms it.
    r = _run_failing(tmp_path, monkeypatch, "Raises")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error: the job failed before its first iteration: EnvironmentFailed: spec.environment.id: the rollout of item" in r.stderr
    assert "environment 'failing_env:Raises': RuntimeError: boom at step 20 (failing_env.py:" in r.stderr
    assert "in step)" in r.stderr
    # two workers' word, and the aggregator's own replay of the item (esenas_aggregator.verify)
    assert "; the aggregator's own replay of it went wrong too: RuntimeError: " in r.stderr
    for log in (tmp_path / "run" / "logs").glob("worker-*.log"):
        assert "Traceback" not in log.read_text()  # reported, not a crash


@pytest.mark.parametrize(("env", "why"), [
    ("Raises", "RuntimeError: boom at step 20"),
    ("ReturnsNaN", "the environment returned a non-finite return"),
    # a rollout past 10 item timeouts (10 x 0.3 s), as in a worker: before, --in-process waited forever
    ("Hangs", "RolloutTimeout: one item's rollout ran past 3 s (10 x spec.workers.itemTimeoutSeconds)"),
])
def test_in_process_an_environment_that_fails_stops_the_run_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, why: str) -> None:
    r = _run_failing(tmp_path, monkeypatch, env, "--in-process", **{"workers.itemTimeoutSeconds": 0.3})
    assert r.returncode == EXIT_FAILED, r.stdout + r.stderr
    assert f"failed: environment 'failing_env:{env}': {why}" in r.stderr and "stopped before the first iteration" in r.stderr
    assert "Traceback" not in r.stderr


def test_when_every_worker_process_dies_the_run_stops_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A process that ends mid-rollout (a crash in native code, the OOM killer) reports nothing;
    # the aggregator would wait for workers forever.
    # The first worker's items reach the second once their lease times out: 2 s here.
    r = _run_failing(tmp_path, monkeypatch, "Exits", **{"workers.itemTimeoutSeconds": 2.0})
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error: every worker process exited (worker-0 with code 3" in r.stderr


def test_an_environment_that_never_returns_fails_the_run_saying_where_it_hung(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A rollout past 10 item timeouts (here 10 x 0.3 s) is reported as hung, interrupted where it is.
    r = _run_failing(tmp_path, monkeypatch, "Hangs", **{"workers.itemTimeoutSeconds": 0.3})
    assert r.returncode == 1, r.stdout + r.stderr
    assert "EnvironmentFailed: spec.environment.id:" in r.stderr
    assert "environment 'failing_env:Hangs': RolloutTimeout: one item's rollout ran past 3 s (10 x spec.workers.itemTimeoutSeconds)" in r.stderr
    assert "(failing_env.py:" in r.stderr and "in step)" in r.stderr  # where it hung
