"""``esenas worker``: the worker pod's entry point (flags in esenas_worker.cli)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from esenas_worker.cli import add_arguments

    p = sub.add_parser("worker", help="run rollouts for an aggregator (the worker pod)")
    add_arguments(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from esenas_worker.cli import main as run

    return run(args)
