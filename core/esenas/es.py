"""Seed-based evolution strategies: perturbations, fitness shaping, top-b, SGD and Adam.

Sign convention, said once: **reward is maximised**; every step moves uphill.

* Antithetic Gaussian perturbations theta +/- sigma*eps, with eps rebuilt from a 64-bit seed by
  ``np.random.Generator(PCG64(seed))`` on both sides, so the wire carries seeds, never vectors
  (Salimans et al. 2017, arXiv 1703.03864).
* ARS V2-t (Mania et al. 2018, arXiv 1803.07055, Algorithm 2): keep the top-b directions by
  max(r+, r-), scale by the std of their 2b rewards; step = alpha/b * sum (r+ - r-) eps / std_R.
  Here that is ``zscore`` shaping of the selected rewards; ``centered_ranks`` is OpenAI ES's.
* The same estimate drives ES-ENAS's shared weights (arXiv 2101.07415, eq. 1, antithetic form).
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from esenas import noise

F64 = npt.NDArray[np.float64]


def perturbation(seed: int, dim: int) -> F64:
    """eps ~ N(0, I_dim), rebuilt identically from ``seed`` on every machine."""
    return np.random.Generator(np.random.PCG64(int(seed))).standard_normal(dim)


def perturbations(seeds: npt.ArrayLike, dim: int) -> F64:
    """Rows of eps for many seeds, shape (len(seeds), dim): row i is ``perturbation(seeds[i], dim)``,
    bit for bit, at a fraction of its cost per seed (:mod:`esenas.noise`)."""
    return noise.standard_normal_rows(seeds, dim)


def zscore(r: F64) -> F64:
    """(r - mean) / std; all-equal rewards give zeros (no signal, no division by zero)."""
    std = float(r.std())
    return np.zeros_like(r) if std < 1e-12 else (r - r.mean()) / std


def centered_ranks(r: F64) -> F64:
    """Ranks mapped to [-0.5, 0.5] (Salimans et al. 2017); ties share their mean rank."""
    flat = r.reshape(-1)
    order = flat.argsort(kind="stable")
    ranks = np.empty(flat.size)
    ranks[order] = np.arange(flat.size, dtype=np.float64)
    # average the ranks of tied rewards so equal rewards get equal utility
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    if counts.max() > 1:
        ranks = np.bincount(inverse, weights=ranks)[inverse] / counts[inverse]
    if flat.size < 2:
        return np.zeros_like(r)
    return (ranks / (flat.size - 1) - 0.5).reshape(r.shape)


def shape_rewards(r: F64, method: str) -> F64:
    """Fitness shaping of an (n, 2) array of (r+, r-) rewards."""
    if method == "zscore":
        return zscore(r)
    if method == "centered_ranks":
        return centered_ranks(r)
    if method == "none":
        return r.astype(np.float64)
    raise ValueError(f"fitness shaping: unknown method {method!r}")


#: The share of an update's pairs kept when ``es.topDirections`` is not set: a quarter (ARS V2-t's
#: top directions). Against all pairs it raised the median best of 5 seeds on every MuJoCo row
#: measured, most on HalfCheetah (docs/tuning.md, bench/results/learning.md's -top16 rows).
DEFAULT_TOP_FRACTION: Final = 0.25


def top_count(configured: int | None, n_pairs: int) -> int:
    """b for an update over ``n_pairs`` pairs: ``es.topDirections`` as set (0: all), or when
    unset a quarter of the pairs, rounded up: 16 of 64, 8 of 32, 1 of 1 to 4."""
    if configured is not None:
        return configured
    return max(1, math.ceil(n_pairs * DEFAULT_TOP_FRACTION))


def top_directions(r_pos: F64, r_neg: F64, b: int) -> npt.NDArray[np.int64]:
    """Indices of the b pairs with the largest max(r+, r-) (ARS V2-t); b <= 0 keeps all."""
    n = r_pos.size
    if b <= 0 or b >= n:
        return np.arange(n, dtype=np.int64)
    score = np.maximum(r_pos, r_neg)
    return np.sort(np.argsort(-score, kind="stable")[:b]).astype(np.int64)


def min_pairs(n_pairs: int, fraction: float) -> int:
    """Pairs that must be in before an iteration may close under the straggler policy
    (``es.minPairsFraction``): ceil(fraction * n), at least one when there are pairs. The
    update then uses the pairs that arrived (OpenAI ES and ARS drop stragglers the same way)."""
    if n_pairs <= 0:
        return 0
    return max(1, min(n_pairs, math.ceil(fraction * n_pairs - 1e-9)))


def gradient(eps: F64, r_pos: F64, r_neg: F64, shaping: str) -> F64:
    """Ascent direction 1/n * sum (s+ - s-) eps over the given pairs (s: shaped rewards); n is
    the number of pairs given, so an iteration closed without its stragglers divides by the
    pairs it used.

    Not divided by sigma, as in ARS: with ``shaping='none'`` it is 2*sigma times the
    antithetic estimate of the gradient of the Gaussian-smoothed reward.
    """
    s = shape_rewards(np.stack([r_pos, r_neg], axis=1), shaping)
    return np.asarray(((s[:, 0] - s[:, 1]) @ eps) / max(len(r_pos), 1), dtype=np.float64)


class Optimizer:
    """A step rule over explicit state: ``step(params, grad) -> new params`` (ascent)."""

    def __init__(self, kind: str, step_size: float, dim: int) -> None:
        if kind not in ("sgd", "adam"):
            raise ValueError(f"optimizer: must be sgd or adam, got {kind!r}")
        self.kind = kind
        self.step_size = step_size
        self.t = 0
        self.m = np.zeros(dim)
        self.v = np.zeros(dim)

    def step(self, params: F64, grad: F64) -> F64:
        self.t += 1
        if self.kind == "sgd":
            return params + self.step_size * grad
        # Adam (Kingma & Ba 2015), ascent form.
        b1, b2, eps = 0.9, 0.999, 1e-8
        self.m = b1 * self.m + (1 - b1) * grad
        self.v = b2 * self.v + (1 - b2) * grad * grad
        m_hat = self.m / (1 - b1**self.t)
        v_hat = self.v / (1 - b2**self.t)
        return params + self.step_size * m_hat / (np.sqrt(v_hat) + eps)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "step_size": self.step_size, "t": self.t, "m": self.m.copy(), "v": self.v.copy()}

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> Optimizer:
        opt = cls(str(d["kind"]), float(d["step_size"]), len(d["m"]))
        opt.t = int(d["t"])
        opt.m = np.array(d["m"], np.float64)
        opt.v = np.array(d["v"], np.float64)
        return opt
