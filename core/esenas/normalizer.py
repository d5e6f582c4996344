"""Mergeable running mean/std of observations (ARS V2, Mania et al. 2018).

Workers return ``count, sum, sumsq`` of the observations they saw; the aggregator merges
them with Chan et al.'s parallel algorithm (1979), so the result equals the statistics of
the whole batch no matter how the work was split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
#: Dimensions that never vary are scaled to ~0 instead of blowing up tiny noise.
MIN_STD: Final = 1e-8
FLAT_STD: Final = 1e8


@dataclass
class RunningStats:
    """count, mean and M2 (sum of squared deviations), merged exactly (Chan et al.)."""

    count: float
    mean: F64
    m2: F64

    @classmethod
    def zeros(cls, dim: int) -> RunningStats:
        return cls(0.0, np.zeros(dim), np.zeros(dim))

    @classmethod
    def from_sums(cls, count: float, total: npt.ArrayLike, sumsq: npt.ArrayLike) -> RunningStats:
        """Stats of one batch from its count, sum and sum of squares."""
        s = np.asarray(total, np.float64)
        if count <= 0:
            return cls.zeros(s.size)
        mean = s / count
        m2 = np.maximum(np.asarray(sumsq, np.float64) - count * mean * mean, 0.0)
        return cls(float(count), mean, m2)

    def merge(self, other: RunningStats) -> RunningStats:
        n = self.count + other.count
        if other.count == 0:
            return RunningStats(self.count, self.mean.copy(), self.m2.copy())
        if self.count == 0:
            return RunningStats(other.count, other.mean.copy(), other.m2.copy())
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta * delta * (self.count * other.count / n)
        return RunningStats(n, mean, m2)

    @property
    def var(self) -> F64:
        if self.count < 2:
            return np.ones_like(self.mean)
        return self.m2 / (self.count - 1)

    def mean_std(self) -> tuple[F64, F64]:
        """(mean, std) for normalising; identity before any data."""
        if self.count < 2:
            return np.zeros_like(self.mean), np.ones_like(self.mean)
        std = np.sqrt(self.var)
        return self.mean.copy(), np.where(std < MIN_STD, FLAT_STD, std)

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean.copy(), "m2": self.m2.copy()}

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> RunningStats:
        return cls(float(d["count"]), np.array(d["mean"], np.float64), np.array(d["m2"], np.float64))
