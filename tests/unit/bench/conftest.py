"""The bench scripts' tests run each one end to end, small, in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def bench_line() -> Callable[..., dict[str, Any]]:
    """Run ``bench/SCRIPT`` with its arguments from the repository root; its final JSON line."""

    def run(script: str, *args: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
        line: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return line

    return run
