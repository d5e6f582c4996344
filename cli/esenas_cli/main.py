"""The ``esenas`` command: argparse subcommands, one module per subcommand.

``run``, ``eval``, ``export`` and ``fetch`` live here. The deployables add their own
(``esenas aggregator``, ``esenas worker``) through the ``esenas.commands`` entry point group,
so this package imports none of them (the ``layers`` contract in pyproject.toml). Each
registration adds its parser and points ``func`` at a handler that returns an exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, Final

from esenas_cli import eval_cmd, export_cmd, fetch_cmd, run_processes
from esenas_cli.args import Parser, version

Register = Callable[[Any], None]  # gets the subparsers action
#: The entry point group where installed deployables register their subcommands.
COMMANDS_GROUP: Final = "esenas.commands"
# `run` starts real aggregator + worker processes; `run --in-process` keeps the in-process trainer.
SUBCOMMANDS: Final[list[Register]] = [
    run_processes.register,
    eval_cmd.register,
    export_cmd.register,
    fetch_cmd.register,
]


def plugins() -> list[Register]:
    """The installed deployables' subcommands, in name order."""
    eps = sorted(metadata.entry_points(group=COMMANDS_GROUP), key=lambda ep: ep.name)
    return [ep.load() for ep in eps]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="esenas",
        description="ES-ENAS: evolution strategies plus a NAS controller for compact RL policies.",
    )
    parser.add_argument("--version", action="version", version=f"esenas {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in [*SUBCOMMANDS, *plugins()]:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from esenas.envload import tidy_gymnasium_warnings

    tidy_gymnasium_warnings()
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
