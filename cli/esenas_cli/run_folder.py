"""The run folder's checkpoints, shared by both runtimes: whether a run may start, and what it resumes.

Both write ``checkpoints/ckpt-<iteration>.esck`` in the library's format (esenas.checkpoint), so
a run started with ``--in-process`` resumes with the processes and the other way round. Starting over a
folder that holds a run is refused: it would train from scratch and overwrite the results. So is a
second ``esenas run`` in a folder another one is training in (:func:`lock`), ``--resume`` or not:
two aggregators would write the same checkpoints.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from esenas.algorithm import ESENAS

from esenas_cli.results_dir import SUMMARY_FILE


@dataclass(frozen=True)
class Resumed:
    """What a resumed run continues from."""

    algo: ESENAS
    path: Path
    phase: str
    reason: str
    elapsed_s: float  # training time before the checkpoint, which a deadline counts

    @property
    def message(self) -> str:
        return f"resuming from iteration {self.algo.iteration} ({self.path.name}, {self.algo.env_steps:,} env steps)"


def checkpoint_dir(out: Path) -> Path:
    return out / "checkpoints"


def aggregator_result_dir(out: Path) -> Path:
    """Where the local aggregator writes its result documents (``--checkpoint-dir``/result)."""
    return checkpoint_dir(out) / "result"


#: The file a training ``esenas run`` holds locked (flock) in its folder's checkpoints (beside what it
#: guards, out of the results a user lists); it holds that process's PID.
LOCK_FILE: Final = ".lock"


def lock(out: Path) -> IO[str] | str:
    """An exclusive lock on ``out`` for as long as the returned file stays open (the kernel drops it
    when this process ends, even by SIGKILL), or one line naming the run that holds it."""
    import fcntl

    checkpoint_dir(out).mkdir(parents=True, exist_ok=True)
    f = (checkpoint_dir(out) / LOCK_FILE).open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip()
        f.close()
        who = f" (pid {holder})" if holder.isdigit() else ""
        return f"--output {out}: another esenas run{who} is training in this folder; wait for it to stop, or pick another --output"
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def has_checkpoint(out: Path) -> bool:
    ckpt = checkpoint_dir(out)
    return ckpt.is_dir() and any(ckpt.glob("ckpt-*.esck"))


def folder_problem(out: Path | None, resume: bool) -> str | None:
    """Why a run may not start in ``out`` (with ``--resume`` or without), or None."""
    if resume and out is None:
        return "--resume needs --output DIR, the folder of the run to continue"
    if out is None:
        return None
    if out.exists() and not out.is_dir():
        return f"--output {out}: not a folder; name a new or existing folder for the run"
    if resume and not has_checkpoint(out):
        return f"--resume: {checkpoint_dir(out)} holds no checkpoint to continue from"
    if not resume and (has_checkpoint(out) or (out / SUMMARY_FILE).exists()):
        return f"{out} already holds a run; add --resume to continue it, or pick another --output"
    return None


def load_resumed(out: Path) -> Resumed | str:
    """The newest readable checkpoint of the run in ``out``, or one line saying why there is none."""
    from esenas.checkpoint import CheckpointError, CheckpointStore, log

    store = CheckpointStore(checkpoint_dir(out))
    level = log.level
    log.setLevel(logging.CRITICAL)  # its fall-back notes would be a second line; the message says it
    try:
        loaded = store.load_latest()
        if loaded is None:
            return f"--resume: {checkpoint_dir(out)} holds no checkpoint to continue from"
        path, state = loaded
        if skipped := [p.name for p in store.files() if p.name > path.name]:
            print(f"warning: skipped unreadable newer checkpoints: {', '.join(skipped)}", file=sys.stderr)
        algo = ESENAS.from_state_dict(state["algo"])
        runtime = state["runtime"]
        return Resumed(algo, path, str(runtime["phase"]), str(runtime["reason"]), algo.elapsed_seconds)
    except (CheckpointError, ValueError, KeyError, TypeError) as exc:
        return f"cannot resume from {checkpoint_dir(out)}: {exc}"
    finally:
        log.setLevel(level)


def save_checkpoint(out: Path, algo: ESENAS, phase: str, reason: str) -> Path:
    """Checkpoint ``algo`` as the aggregator does, so either runtime can resume it."""
    from esenas import checkpoint

    state: dict[str, Any] = {"algo": algo.state_dict(), "runtime": {"phase": phase, "reason": reason}}
    return checkpoint.CheckpointStore(checkpoint_dir(out)).save(algo.iteration, checkpoint.encode(state))
