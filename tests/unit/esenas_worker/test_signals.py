"""The worker's signal handler: a stop leaves a blocking wait once, never the shutdown after it."""

from __future__ import annotations

import pytest
from esenas_worker.worker import Worker, _Stop


def test_a_second_signal_does_not_raise_into_the_shutdown() -> None:
    """The first signal inside a blocking wait raises _Stop to leave it; one that follows lands in
    the clean-up (the channel's close) and only sets the flag, as outside a wait."""
    w = Worker.__new__(Worker)
    w._stop, w._interruptible = False, True
    with pytest.raises(_Stop):
        w._on_signal(15, None)
    w._on_signal(15, None)  # no second raise
    assert w._stop and not w._interruptible
