"""The ES step's perturbation rows: rebuilt from seeds ahead of ``tell`` and looked up by pair.

A mixin of :class:`esenas.algorithm.ESENAS`: eps is rebuilt from each pair's 64-bit seed
(:func:`esenas.es.perturbations`, ~12 us a row), while the workers roll out (the aggregator's
prefetch), so the iteration's serial step does not (1 s at 80,000 pairs). Pairs carried from the
previous iteration (:class:`esenas.results.Carried`) are rebuilt at the step: they are few.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from esenas import es
from esenas.network import Architecture
from esenas.results import KIND_PAIR, Carried, Plan

#: Largest cache of prefetched perturbations (100,000 pairs of a 64-parameter policy: 51 MB).
EPS_CACHE_BYTES: Final = 256 * 1024 * 1024


class PerturbationCache:
    """eps rows of the current plan's first ``_eps_ready`` pairs."""

    arch: Architecture
    _eps: np.ndarray | None
    _eps_ready: int

    def ask(self) -> Plan:
        raise NotImplementedError

    def prefetch_perturbations(self, max_rows: int) -> bool:
        """Rebuild eps for up to ``max_rows`` more pairs of the current plan ahead of ``tell``;
        True once all are cached. Skipped (True) when the cache would pass ``EPS_CACHE_BYTES``."""
        plan = self.ask()
        seeds = plan.items["seed"][plan.items["kind"] == KIND_PAIR]
        if seeds.size * self.arch.num_params * 8 > EPS_CACHE_BYTES:
            return True
        if self._eps is None:
            self._eps = np.empty((seeds.size, self.arch.num_params))
        end = min(seeds.size, self._eps_ready + max_rows)
        if end > self._eps_ready:
            self._eps[self._eps_ready : end] = es.perturbations(seeds[self._eps_ready : end], self.arch.num_params)
            self._eps_ready = end
        return bool(self._eps_ready == seeds.size)

    def _perturbations(self, seeds: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """eps rows of the selected pairs: cached ones from the prefetch, the rest rebuilt now."""
        if self._eps is None or self._eps_ready == 0:
            return es.perturbations(seeds[sel], self.arch.num_params)
        if sel.size == self._eps_ready and (sel.size == 0 or sel[-1] == sel.size - 1):
            return self._eps[: sel.size]  # sel is sorted and distinct: every cached row, in order; no copy
        out = np.empty((sel.size, self.arch.num_params))
        cached = sel < self._eps_ready
        out[cached] = self._eps[sel[cached]]
        if not cached.all():
            out[~cached] = es.perturbations(seeds[sel[~cached]], self.arch.num_params)
        return out

    def _step_rows(self, seeds: np.ndarray, rows: np.ndarray, sel: np.ndarray, carried: Carried | None) -> np.ndarray:
        """eps of the step's selected pairs ``sel``: the plan's pairs ``rows`` (their rows of eps)
        come first, then the carried ones, in that order."""
        n = rows.size
        if carried is None or not len(carried):
            return self._perturbations(seeds, rows[sel])
        out = np.empty((sel.size, self.arch.num_params))
        now = sel < n
        out[now] = self._perturbations(seeds, rows[sel[now]])
        out[~now] = es.perturbations(carried.seeds[sel[~now] - n], self.arch.num_params)
        return out
