"""``python -m esenas_cli.child MODULE ARGS...``: run ``python -m MODULE ARGS...`` tied to its parent.

``esenas run`` starts the aggregator and the workers through this, so that they stop (SIGTERM:
the aggregator checkpoints) when ``esenas run`` dies, even by SIGKILL, instead of training on
as orphans. The parent passes its PID in :data:`PARENT_ENV` to close the start-up race.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Final

PARENT_ENV: Final = "ESENAS_PARENT_PID"


def main() -> None:
    from esenas.lifetime import die_with_parent

    parent = os.environ.pop(PARENT_ENV, None)
    die_with_parent(parent=int(parent) if parent else None)
    module, *argv = sys.argv[1:]
    sys.argv = [module, *argv]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
