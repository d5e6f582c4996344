"""Flag types and the parser class of ``esenas``: a bad flag is one line and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import metadata
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (the usage block buries it); ``--help`` shows the usage."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _at_least(low: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
        return value

    return parse


#: An integer >= 1, e.g. ``--workers`` (0 workers would wait forever for results).
positive_int = _at_least(1, "a positive integer")
#: An integer >= 0, e.g. ``--fresh-episodes`` (0 turns it off).
non_negative_int = _at_least(0, "a whole number >= 0")


def port(text: str) -> int:
    """A TCP port; 0 lets the system pick a free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number (0-65535), got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (0-65535), got {value}")
    return value


def version() -> str:
    try:
        return metadata.version("esenas-cli")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


#: The least memory one worker process takes (Python, NumPy, Gymnasium and MuJoCo loaded): a
#: HalfCheetah worker's proportional set size was 52 MiB on Linux, 44 MiB of it its own.
WORKER_MIB = 64


def available_mib() -> int | None:
    """MemAvailable from /proc/meminfo, or None where there is none (not Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def too_many_workers(workers: int, available: int | None) -> str | None:
    """Why ``--workers`` local processes cannot fit in ``available`` MiB, or None where they can.

    Thousands of local processes would take the machine's memory, and its OOM killer then
    chooses what dies; that is refused up front, naming what fits.
    """
    if available is None or workers * WORKER_MIB <= available:
        return None
    return (f"--workers {workers}: that many worker processes need at least {workers * WORKER_MIB / 1024:,.1f} GiB "
            f"({WORKER_MIB} MiB each) and this machine has {available / 1024:,.1f} GiB available: at most "
            f"{max(1, available // WORKER_MIB):,} fit. A larger fleet runs on a cluster (kubectl apply -f JOB.yaml)")
