"""The ``esenas`` command: argparse subcommands, one module per subcommand.

The runtime adds ``aggregator`` and ``worker`` by appending to :data:`SUBCOMMANDS`; each
entry registers its parser and points ``func`` at its handler, which returns an exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

from esenas_cli import aggregator_cmd, eval_cmd, export_cmd, fetch_cmd, run_processes, worker_cmd
from esenas_cli.args import Parser, version

Register = Callable[[Any], None]  # gets the subparsers action
# `run` starts real aggregator + worker processes; `run --in-process` keeps the in-process trainer.
SUBCOMMANDS: Final[list[Register]] = [
    run_processes.register,
    eval_cmd.register,
    export_cmd.register,
    fetch_cmd.register,
    aggregator_cmd.register,
    worker_cmd.register,
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="esenas",
        description="ES-ENAS: evolution strategies plus a NAS controller for compact RL policies.",
    )
    parser.add_argument("--version", action="version", version=f"esenas {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
