"""The run's random streams: one per purpose and index, derived from the job seed, so a run is
deterministic given ``spec.seed`` and asking twice gives the same plan (esenas.algorithm).

Every stream is (seed, purpose, index), always all three words, with non-zero purposes:
SeedSequence pads short entropy with zeros, so (seed, 2) and (seed, 2, 0) would be one stream, and
(seed) and (seed, 0, 0) another.
"""

from __future__ import annotations

from typing import Final

import numpy as np

PERTURBATION: Final = 1  # index: the iteration
CONTROLLER: Final = 2  # index: the iteration
INIT: Final = 3  # the initial weights; index: the trial (esenas.trials)
FIRST_TOPOLOGY: Final = 4


def stream(seed: int, purpose: int, index: int = 0) -> np.random.Generator:
    """The stream of one purpose (and index) of the run seeded ``seed``; no two coincide."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, purpose, index])))
