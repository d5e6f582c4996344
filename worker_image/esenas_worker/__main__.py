"""`python -m esenas_worker`: the same process as `esenas worker`, without the CLI package."""

from __future__ import annotations

import argparse
import sys

from esenas_worker.cli import add_arguments, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="esenas worker")
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
