"""A port the aggregator or a relay cannot bind (another server holds it) is one line naming the
flag, exit code 2, and a clean exit: before, an asyncio traceback buried under grpc's finaliser
noise, and ``esenas run`` said only "the aggregator did not start"."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.runtime.procs import REPO, write_job


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another server listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """``aggregator ...`` runs ``python -m esenas_aggregator``; ``relay ...`` the relay's entry point."""
    what, *rest = args
    code = ["-m", "esenas_aggregator"] if what == "aggregator" else \
        ["-c", "from esenas_aggregator.relay_cli import run; raise SystemExit(run())"]
    return subprocess.run([sys.executable, *code, *rest], capture_output=True, text=True, timeout=120, cwd=REPO)


def _common(tmp_path: Path) -> list[str]:
    job = write_job(tmp_path)
    return ["--job", str(job), "--token-file", str(tmp_path / "token"), "--host", "127.0.0.1"]


def _last_line(p: subprocess.CompletedProcess[str]) -> str:
    out = p.stdout + p.stderr
    assert "Traceback" not in out and "Event loop is closed" not in out, out
    return out.strip().splitlines()[-1]


def test_the_aggregator_names_a_taken_http_port(tmp_path: Path, taken: int) -> None:
    p = _run("aggregator", *_common(tmp_path), "--checkpoint-dir", str(tmp_path / "ckpt"), "--port", "0", "--http-port", str(taken))
    assert p.returncode == 2
    assert _last_line(p).startswith(f"--http-port {taken}: cannot serve HTTP on 127.0.0.1:{taken}: ")
    assert _last_line(p).endswith("address already in use")


def test_the_aggregator_names_a_taken_grpc_port(tmp_path: Path, taken: int) -> None:
    p = _run("aggregator", *_common(tmp_path), "--checkpoint-dir", str(tmp_path / "ckpt"), "--port", str(taken), "--http-port", "0")
    assert p.returncode == 2
    assert _last_line(p).startswith(f"--port {taken}: cannot serve gRPC on 127.0.0.1:{taken}: ")


def test_a_relay_names_a_taken_http_port(tmp_path: Path, taken: int) -> None:
    p = _run("relay", *_common(tmp_path), "--upstream", "127.0.0.1:1", "--port", "0", "--http-port", str(taken), "--relay-id", "r0")
    assert p.returncode == 2
    assert _last_line(p).startswith(f"--http-port {taken}: cannot serve HTTP on 127.0.0.1:{taken}: ")


def test_esenas_run_says_why_its_aggregator_did_not_start(tmp_path: Path, taken: int) -> None:
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-c", "import sys; from esenas_cli.main import main; sys.exit(main())", "run",
                        str(write_job(tmp_path)), "--workers", "1", "--no-video", "--http-port", str(taken), "--output", str(out)],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == (
        f"error: the aggregator did not start: --http-port {taken}: cannot serve HTTP on 127.0.0.1:{taken}: error while "
        f"attempting to bind on address ('127.0.0.1', {taken}): address already in use (its log: {out}/logs/aggregator.log)")
