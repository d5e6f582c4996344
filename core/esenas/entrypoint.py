"""Shared start-up of the pod entry points (aggregator, worker): logging, required flags, and the
one-line reason a pod cannot start.

The deployables may not import each other, so what their CLIs have in common lives here.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def report_missing(command: str, flags: Sequence[tuple[str, object]]) -> bool:
    """Print which required flags (or their ESENAS_* variables) are unset; True if any is."""
    missing = [name for name, value in flags if not value]
    if missing:
        print(f"esenas {command}: missing {', '.join(missing)} (or their ESENAS_* variables)", file=sys.stderr)
    return bool(missing)


#: Where the kubelet reads a container's termination message (the pod's default
#: terminationMessagePath). It bind-mounts the file, writable by any user; it does not exist
#: outside a pod, so a local process never creates it.
TERMINATION_LOG: Final = Path("/dev/termination-log")


def exit_with_reason(reason: str, termination_log: Path = TERMINATION_LOG) -> int:
    """Report why a pod's process cannot start, in one line, and return its exit code (2).

    The line goes to the termination message, which ``kubectl describe pod`` shows and the
    operator copies onto the job's Failed condition, and last to stderr: with
    FallbackToLogsOnError (or where no termination log is mounted) the log's last line is it.
    """
    line = " ".join(reason.split())
    if termination_log.is_file():
        with contextlib.suppress(OSError):
            termination_log.write_text(line + "\n")
    for handler in logging.getLogger().handlers:  # what was logged comes first: the line stays last
        handler.flush()
    print(line, file=sys.stderr, flush=True)
    return 2


Main = Callable[[argparse.Namespace], int]


class Command:
    """A deployable's command, runnable two ways with the same flags: as its own program
    (``esenas-NAME``, ``python -m esenas_NAME``: :meth:`run`) and, where the ``esenas`` CLI is
    installed, as ``esenas NAME`` (:meth:`register`, the ``esenas.commands`` entry point)."""

    def __init__(self, name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None], main: Main) -> None:
        self.name, self.help, self.add_arguments, self.main = name, help, add_arguments, main

    def register(self, sub: Any) -> None:
        """Add ``esenas NAME`` to the ``esenas`` command's subparsers."""
        p = sub.add_parser(self.name, help=self.help)
        self.add_arguments(p)
        p.set_defaults(func=self.main)

    def run(self, argv: Sequence[str] | None = None) -> int:
        """``esenas-NAME``: parse the flags and run."""
        parser = argparse.ArgumentParser(prog=f"esenas-{self.name}", description=self.help)
        self.add_arguments(parser)
        return self.main(parser.parse_args(argv))
