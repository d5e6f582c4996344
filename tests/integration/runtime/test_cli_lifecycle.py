"""``esenas run`` as a real process: SIGTERM checkpoints like Ctrl-C, and no child outlives it, even by SIGKILL.

Also: the status URL and ``--http-port``, and MuJoCo's log in the run folder, not the working directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.runtime.procs import free_port, write_job

CLI = [sys.executable, "-c", "import sys; from esenas_cli.main import main; sys.exit(main())"]
#: Endless unless stopped: a target no pendulum reaches, checkpoints only on stopping.
ENDLESS: dict[str, Any] = {
    "stopping.targetReward": 1e9, "stopping.maxIterations": 1_000_000, "aggregator.checkpoint.everyIterations": 1000,
    "environment.maxEpisodeSteps": 50,
}


def children_of(pid: int) -> set[int]:
    """PIDs whose parent is ``pid``."""
    found = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(d.name))
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (a zombie has finished)."""
    left = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            left.add(pid)
    return left


def describe(pids: set[int]) -> str:
    """Each PID's state and wait channel, for a failure message."""
    def one(pid: int) -> str:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[-80:]
        except OSError:
            return f"{pid}: gone"
        return f"{pid} {state} {wchan} {cmd}"
    return "; ".join(one(pid) for pid in sorted(pids))


def log_tails(out: Path) -> str:
    """The last lines of each child's log in the run folder."""
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}" for log in sorted((out / "logs").glob("*.log")))


def wait_until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := pred():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def status(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as r:
            return dict(json.loads(r.read()))
    except OSError:
        return None


def start(tmp_path: Path, *flags: str, **overrides: Any) -> tuple[subprocess.Popen[str], Path]:
    job = write_job(tmp_path, **{**ENDLESS, **overrides})
    out = tmp_path / "run"
    cmd = [*CLI, "run", str(job), "--output", str(out), *flags]
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), out


def checkpoints(out: Path) -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in (out / "checkpoints").glob("ckpt-*.esck"))


def test_sigterm_checkpoints_and_stops_every_child(tmp_path: Path) -> None:
    port = free_port()
    p, out = start(tmp_path, "--workers", "2", "--http-port", str(port))
    try:
        wait_until(lambda: (s := status(port)) and s["iteration"] >= 2, 60, "iteration 2 on --http-port")
        kids = children_of(p.pid)
        assert len(kids) == 3, "one aggregator and two workers"
        p.send_signal(signal.SIGTERM)
        text = p.communicate(timeout=60)[0]
    finally:
        p.kill()
    assert p.returncode == 130, text
    assert f"status: http://127.0.0.1:{port}/status  metrics: http://127.0.0.1:{port}/metrics" in text
    assert "interrupted (SIGTERM): checkpointing and stopping" in text
    assert "resume with:" in text
    assert not alive(kids)
    assert checkpoints(out)[-1] >= 2  # written on SIGTERM, although everyIterations is 1000
    assert (out / "summary.json").exists()


def test_sigkill_takes_the_children_down(tmp_path: Path) -> None:
    p, out = start(tmp_path, "--workers", "1")
    try:
        wait_until(lambda: (out / ".ports.json").exists() and len(children_of(p.pid)) == 2, 60, "the aggregator and a worker")
        port = json.loads((out / ".ports.json").read_text())["http"]
        wait_until(lambda: (s := status(port)) and s["iteration"] >= 1, 60, "iteration 1")
        kids = children_of(p.pid)
        p.kill()
        p.wait(10)
    finally:
        p.kill()
    try:  # the aggregator checkpoints first; a loaded CI machine can take a while
        wait_until(lambda: not alive(kids), 60, "the children to exit after their parent's SIGKILL")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: still running {describe(alive(kids))}\n{log_tails(out)}") from None
    assert checkpoints(out), "PR_SET_PDEATHSIG sends the aggregator SIGTERM, and it checkpoints"


def test_an_aggregator_killed_ends_the_run_at_once_saying_how_to_resume(tmp_path: Path) -> None:
    """The OOM killer takes the aggregator: the workers are stopped at once (they waited 15 s each),
    and the line says what happened and how to go on from the last checkpoint."""
    p, out = start(tmp_path, "--workers", "2", **{"aggregator.checkpoint.everyIterations": 1})
    try:
        wait_until(lambda: (out / "checkpoints").is_dir() and len(checkpoints(out)) >= 2, 60, "two checkpoints")
        kids = children_of(p.pid)
        aggregator = next(k for k in kids if "esenas_aggregator" in Path(f"/proc/{k}/cmdline").read_text())
        os.kill(aggregator, signal.SIGKILL)
        text = p.communicate(timeout=30)[0]
    finally:
        p.kill()
    assert p.returncode == 1, text
    assert text.strip().splitlines()[-1] == (
        "error: the aggregator was killed by SIGKILL (the OOM killer sends SIGKILL); "
        f"resume with: esenas run {tmp_path / 'job.yaml'} --output {out} --resume")
    assert not alive(kids)


def test_in_process_sigterm_checkpoints_and_stops_the_pool(tmp_path: Path) -> None:
    p, out = start(tmp_path, "--in-process", "--workers", "2", **{"aggregator.checkpoint.everyIterations": 1})
    try:
        wait_until(lambda: (out / "checkpoints").is_dir() and checkpoints(out), 60, "a first checkpoint")
        kids = children_of(p.pid)
        assert len(kids) == 2, "two rollout processes"
        seen = checkpoints(out)[-1]
        p.send_signal(signal.SIGTERM)
        text = p.communicate(timeout=60)[0]
    finally:
        p.kill()
    assert p.returncode == 130, text
    assert "stopped: interrupted (SIGTERM)" in text
    assert "--in-process --output" in text and "--resume" in text
    assert not alive(kids)
    assert checkpoints(out)[-1] >= seen
    assert json.loads((out / "summary.json").read_text())["iterations"] == checkpoints(out)[-1]


def test_in_process_sigterm_to_the_whole_group_stops_without_worker_tracebacks(tmp_path: Path) -> None:
    """``timeout``, systemd and ``kill -- -PGID`` signal every process of the group. The rollout
    processes end at once (they leave SIGTERM to the kernel, not to the copy of ``esenas run``'s
    handler their fork inherited), and the run checkpoints as for a SIGTERM of its own."""
    job = write_job(tmp_path, **{**ENDLESS, "aggregator.checkpoint.everyIterations": 1})
    out = tmp_path / "run"
    cmd = [*CLI, "run", str(job), "--output", str(out), "--in-process", "--workers", "2"]
    p = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_until(lambda: (out / "checkpoints").is_dir() and len(checkpoints(out)) >= 2, 60, "two checkpoints")
        kids = children_of(p.pid)
        assert len(kids) == 2, "two rollout processes"
        os.killpg(p.pid, signal.SIGTERM)
        text = p.communicate(timeout=60)[0]
    finally:
        p.kill()
    assert p.returncode == 130, text
    assert "stopped: interrupted (SIGTERM)" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert not alive(kids)
    assert json.loads((out / "summary.json").read_text())["iterations"] == checkpoints(out)[-1]


def test_in_process_a_rollout_process_killed_stops_the_run_with_a_checkpoint(tmp_path: Path) -> None:
    """The OOM killer takes one rollout process: the run says which and how, checkpoints the last
    completed iteration, writes its results and tells how to resume; it does not hang."""
    p, out = start(tmp_path, "--in-process", "--workers", "2", **{"aggregator.checkpoint.everyIterations": 1})
    try:
        wait_until(lambda: (out / "checkpoints").is_dir() and len(checkpoints(out)) >= 2, 60, "two checkpoints")
        victim = min(children_of(p.pid))
        os.kill(victim, signal.SIGKILL)
        text = p.communicate(timeout=60)[0]
    finally:
        p.kill()
    assert p.returncode == 1, text
    assert f"stopped: failed: rollout process {victim} exited (killed by SIGKILL) during a task" in text
    assert "--in-process --output" in text and "--resume" in text
    assert "Traceback" not in text, text
    assert json.loads((out / "summary.json").read_text())["iterations"] == checkpoints(out)[-1]


def test_in_process_sigkill_takes_the_pool_down(tmp_path: Path) -> None:
    p, _ = start(tmp_path, "--in-process", "--workers", "2")
    try:
        kids = wait_until(lambda: len(c := children_of(p.pid)) == 2 and c, 60, "two rollout processes")
        p.kill()
        p.wait(10)
    finally:
        p.kill()
    wait_until(lambda: not alive(kids), 20, f"rollout processes {alive(kids)} to exit after their parent's SIGKILL")


def test_mujoco_log_lands_in_the_run_folder(tmp_path: Path) -> None:
    """HalfCheetah warns as it loads (a deprecated compiler attribute); MuJoCo logs that to ./MUJOCO_LOG.TXT."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    job = write_job(tmp_path, **{"environment.id": "HalfCheetah-v5", "environment.maxEpisodeSteps": 10,
                                 "stopping.maxIterations": 1, "es.perturbations": 2, "es.topDirections": 2})
    for flags in (["--workers", "1"], ["--in-process", "--workers", "1"]):
        out = tmp_path / f"run{len(flags)}"
        r = subprocess.run([*CLI, "run", str(job), "--output", str(out), *flags], cwd=cwd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "settotalmass" in (out / "MUJOCO_LOG.TXT").read_text()
    r = subprocess.run([*CLI, "eval", str(out), "--episodes", "1"], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert os.listdir(cwd) == []
