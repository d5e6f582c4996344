"""MuJoCo's warnings go to the run's folder, not to MUJOCO_LOG.TXT in the working directory.

MuJoCo's default warning handler appends to ``MUJOCO_LOG.TXT`` in the current directory (and
most MuJoCo tasks warn as they load, about a deprecated compiler attribute). Child processes
are started in the run folder; this process keeps its directory and installs a handler that
writes the same file into the run folder instead. Forked rollout processes inherit it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import time
from pathlib import Path
from typing import Final

LOG_NAME: Final = "MUJOCO_LOG.TXT"

_folder: Path | None = None
_pending: list[str] = []


def capture(folder: Path | None) -> None:
    """Write this process's MuJoCo warnings to ``folder/MUJOCO_LOG.TXT`` from now on.

    None holds them until the folder is known (a run's default folder needs the parsed job).
    """
    global _folder
    _folder = folder
    if folder is not None and _pending:
        lines = "".join(_pending)
        _pending.clear()
        _write(lines)
    if importlib.util.find_spec("mujoco") is None:  # a task without MuJoCo: nothing to catch
        return
    import mujoco

    mujoco.set_mju_user_warning(_warn)


def _warn(message: str) -> None:
    line = f"WARNING {time.ctime()}: {message}\n\n"
    if _folder is None:
        _pending.append(line)
        del _pending[:-100]  # a bound, should something warn in a loop before the folder is known
    else:
        _write(line)


def _write(text: str) -> None:
    if _folder is not None:
        with contextlib.suppress(OSError):
            _folder.mkdir(parents=True, exist_ok=True)
            with open(_folder / LOG_NAME, "a") as f:
                f.write(text)
            return
    sys.stderr.write(text)
