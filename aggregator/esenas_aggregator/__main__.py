"""`python -m esenas_aggregator`: the same process as `esenas aggregator`, without the CLI package."""

from __future__ import annotations

import argparse
import sys

from esenas_aggregator.cli import add_arguments, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="esenas aggregator")
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
