"""The in-process trainer: a run is bit-for-bit repeatable with a process pool."""

from __future__ import annotations

import numpy as np
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
