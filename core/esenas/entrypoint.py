"""Shared start-up of the pod entry points (aggregator, worker): logging and required flags.

The deployables may not import each other, so what their CLIs have in common lives here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def report_missing(command: str, flags: Sequence[tuple[str, object]]) -> bool:
    """Print which required flags (or their ESENAS_* variables) are unset; True if any is."""
    missing = [name for name, value in flags if not value]
    if missing:
        print(f"esenas {command}: missing {', '.join(missing)} (or their ESENAS_* variables)", file=sys.stderr)
    return bool(missing)
