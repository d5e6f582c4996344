"""Work items for the aggregator's unit tests: ``n`` perturbation pairs (seeds 1..n) and then
``exact`` exact evaluations, over three topologies."""

from __future__ import annotations

import numpy as np
from esenas_api import wire


def work_items(n: int, exact: int = 0) -> np.ndarray:
    it = np.zeros(n + exact, dtype=wire.WORK_DTYPE)
    it["index"] = np.arange(n + exact)
    it["seed"][:n] = np.arange(1, n + 1)
    it["topology"] = np.arange(n + exact) % 3
    it["kind"][n:] = wire.KIND_EXACT
    return it
