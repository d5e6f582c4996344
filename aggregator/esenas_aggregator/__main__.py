"""``python -m esenas_aggregator``: the same process as ``esenas-aggregator``."""

import sys

from esenas_aggregator.cli import run

if __name__ == "__main__":
    sys.exit(run())
