"""The in-process trainer: a run is bit-for-bit repeatable with a process pool, and its workers
end when the pool ends them."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from esenas.spec import parse_spec
from esenas.trainer import Trainer

SPEC = parse_spec(
    {
        "environment": {"id": "InvertedPendulum-v5", "maxEpisodeSteps": 200},
        "es": {"perturbations": 12, "topDirections": 6, "exactEvals": 2, "sigma": 0.1},
        "stopping": {"maxIterations": 4},
    }
)


def test_pool_run_is_repeatable_bit_for_bit() -> None:
    runs = []
    for _ in range(2):
        algo, reason = Trainer(SPEC, workers=2).run()
        assert reason.startswith("max iterations")
        runs.append(algo)
    a, b = runs
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(a.obs_stats.mean, b.obs_stats.mean) and np.array_equal(a.obs_stats.m2, b.obs_stats.m2)
    assert [h["reward_mean"] for h in a.history] == [h["reward_mean"] for h in b.history]


def _signal_masks(pid: int) -> dict[str, int]:
    """The kernel's view of a process's signals: SigBlk, SigIgn and SigCgt as bit masks."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: int(v, 16) for k, v in (ln.split(":\t") for ln in lines if ln[:6] in ("SigBlk", "SigIgn", "SigCgt"))}


def _bit(sig: int) -> int:
    return 1 << (sig - 1)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # what `esenas run` does with SIGTERM, to checkpoint and stop


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_pool_workers_leave_sigterm_to_the_kernel_whatever_the_parent_handles() -> None:
    """A worker that ran the parent's copied SIGTERM handler could hang in its exit path when
    ``Pool.terminate`` signals it, and the parent with it: workers take SIGTERM's default action,
    ignore Ctrl-C, and block neither; the parent's own handling is unchanged."""
    old = signal.signal(signal.SIGTERM, _stop)
    trainer = Trainer(SPEC, workers=2)
    try:
        assert trainer.algo is not None
        trainer.evaluate(trainer.algo.ask())
        workers = list(trainer._pool.procs)
        assert len(workers) == 2
        for w in workers:
            masks = _signal_masks(w.pid)
            assert not masks["SigCgt"] & _bit(signal.SIGTERM), masks
            assert not masks["SigIgn"] & _bit(signal.SIGTERM), masks
            assert masks["SigIgn"] & _bit(signal.SIGINT), masks
            assert not masks["SigBlk"] & (_bit(signal.SIGTERM) | _bit(signal.SIGINT)), masks
        assert signal.getsignal(signal.SIGTERM) is _stop
        assert not signal.pthread_sigmask(signal.SIG_BLOCK, set()) & {signal.SIGTERM, signal.SIGINT}
    finally:
        trainer.close()
        signal.signal(signal.SIGTERM, old)
    assert [w.exitcode for w in workers if w.exitcode not in (0, -signal.SIGTERM)] == []
