"""``python -m esenas_worker``: the same process as ``esenas-worker``."""

import sys

from esenas_worker.cli import run

if __name__ == "__main__":
    sys.exit(run())
