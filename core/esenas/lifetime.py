"""Child processes that die with their parent, even when the parent is killed with SIGKILL.

Linux's ``prctl(PR_SET_PDEATHSIG)`` sends the child a signal when the thread that started it
exits; elsewhere this does nothing. A parent that died before the call is caught by checking
the parent PID afterwards.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Final

PR_SET_PDEATHSIG: Final = 1


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> bool:
    """Ask for ``sig`` when the parent exits; True if the kernel will send it.

    With ``parent`` (its PID, known before the fork), a parent already gone sends ``sig`` now.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent is not None and os.getppid() != parent:  # it died between the fork and prctl
        os.kill(os.getpid(), sig)
    return True
