"""The container's stop never leaves a process behind, whatever the run loop is doing."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.simcluster.container import Container
from tests.simcluster.podspec import Launch

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _stop_while_starting(tmp_path: Path) -> tuple[int | None, list[int]]:
    container = Container({"name": "c"}, Launch(SLEEPER, dict(os.environ), str(tmp_path)), {}, "Always",
                          tmp_path / "c.log", lambda: None)
    container.start()
    await asyncio.sleep(0)  # the run loop is now inside create_subprocess_exec, with no process yet
    assert container.proc is None
    await container.stop(grace=5)
    proc = container.proc
    return (proc.pid if proc is not None else None), container.state.history


def test_a_stop_during_the_process_start_ends_that_process(tmp_path: Path) -> None:
    pid, history = asyncio.run(_stop_while_starting(tmp_path))
    assert pid is not None, "the run loop started the process after the stop began"
    assert not alive(pid), f"process {pid} outlived the container's stop"
    assert history == [-15], f"SIGTERM ends it (no restart, no SIGKILL): {history}"


async def _stop_after_grace(tmp_path: Path) -> tuple[int, list[int]]:
    stubborn = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('up', flush=True); time.sleep(60)"]
    log = tmp_path / "s.log"
    container = Container({"name": "s"}, Launch(stubborn, dict(os.environ), str(tmp_path)), {}, "Always", log, lambda: None)
    container.start()
    while b"up" not in (log.read_bytes() if log.exists() else b""):
        await asyncio.sleep(0.05)
    assert container.proc is not None
    pid = container.proc.pid
    await container.stop(grace=0.5)
    return pid, container.state.history


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    pid, history = asyncio.run(_stop_after_grace(tmp_path))
    assert not alive(pid)
    assert history == [-9], history
