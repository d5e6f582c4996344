"""``esenas aggregator``: the aggregator pod's entry point (flags in esenas_aggregator.cli)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from esenas_aggregator.cli import add_arguments

    p = sub.add_parser("aggregator", help="serve one job's work queue over gRPC (the aggregator pod)")
    add_arguments(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from esenas_aggregator.cli import main as run

    return run(args)
