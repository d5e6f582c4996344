"""A time limit on one rollout, for environments that never return.

A rollout is one item: an episode (an exact eval) or two (a pair). An environment stuck in a loop
or a blocking call would hold its worker, and then every worker it is re-issued to, forever.
:func:`time_limit` interrupts it where it is (SIGALRM, in the main thread), so the failure names
that line. The worker reports it as the item's failure (esenas_worker.items); ``esenas run
--in-process`` stops with it (esenas.trainer). Native code that never returns to the interpreter is
not interrupted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any, Final

#: A rollout longer than this many item timeouts is reported as hung (an item's lease, a batch of
#: them, is re-issued after one timeout; ten for one item is no task's honest pace).
HANG_FACTOR: Final = 10.0


def where(exc: BaseException) -> str:
    """Where ``exc`` was raised, as " (file.py:LINE in function)", or "": for a
    :class:`RolloutTimeout`, where the rollout was when the limit struck (not this module's handler)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""


class RolloutTimeout(Exception):
    """One item's rollout ran past the limit: an environment that never returns?"""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`RolloutTimeout` in this (the main) thread after ``seconds`` of the block (SIGALRM);
    a hang in Python code (a loop, a blocking call that retries) is interrupted where it is, so the
    report says where. None, or off the main thread: no limit."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise RolloutTimeout(f"one item's rollout ran past {seconds:g} s ({HANG_FACTOR:g} x spec.workers.itemTimeoutSeconds): "
                             "an environment that never returns? If its episodes are this slow, raise itemTimeoutSeconds")

    previous = signal.signal(signal.SIGALRM, expired)
    start = time.monotonic()
    pending, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:  # someone else's alarm (a test runner's timeout) gets its handler and the rest of its time back
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if pending > 0:
            signal.setitimer(signal.ITIMER_REAL, max(pending - (time.monotonic() - start), 0.001))
