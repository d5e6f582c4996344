"""Multi-objective: trade reward against size, and keep the Pareto front.

``mnasnet`` is MnasNet's soft constraint (Tan et al. 2019, eq. 2): r * (size/target)^-w,
made robust to negative rewards (a bigger network must never make a negative reward look
better): for r < 0 the exponent flips sign. ``linear`` is r - w*|r|*(size/target - 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from esenas.spec import ObjectivesSpec

F64 = npt.NDArray[np.float64]


def combine(rewards: npt.ArrayLike, sizes: npt.ArrayLike, spec: ObjectivesSpec) -> F64:
    """Controller fitness from rewards and sizes; the plain reward when size_weight is 0."""
    r = np.asarray(rewards, np.float64)
    if spec.size_weight == 0 or spec.target_size is None:
        return r.copy()
    ratio = np.maximum(np.asarray(sizes, np.float64), 1.0) / float(spec.target_size)
    w = spec.size_weight
    if spec.size_method == "linear":
        return np.asarray(r - w * np.abs(r) * (ratio - 1.0), np.float64)
    return np.asarray(np.where(r >= 0, r * ratio**-w, r * ratio**w), np.float64)


def front_indices(rewards: npt.ArrayLike, sizes: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Indices of the non-dominated points of one batch (reward up, size down), one per size.

    Vectorised, so a batch of 100,000 topologies costs a sort; only these few points then
    need their topology serialised for :class:`ParetoFront`.
    """
    r, s = np.asarray(rewards, np.float64), np.asarray(sizes, np.int64)
    if r.size == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((-r, s))  # ascending size, best reward first within a size
    rs = r[order]
    first_of_size = np.ones(order.size, bool)
    first_of_size[1:] = s[order][1:] != s[order][:-1]
    best_before = np.maximum.accumulate(np.concatenate([[-np.inf], rs[:-1]]))
    keep = first_of_size & (rs > best_before)
    return np.asarray(order[keep], np.int64)


class ParetoFront:
    """Non-dominated (reward up, size down) points seen so far, one per size at most."""

    def __init__(self) -> None:
        self.points: list[dict[str, Any]] = []

    def update(self, rewards: npt.ArrayLike, sizes: npt.ArrayLike, topologies: list[dict[str, Any]]) -> None:
        pts = self.points + [
            {"reward": float(r), "size": int(s), "topology": t}
            for r, s, t in zip(np.asarray(rewards).tolist(), np.asarray(sizes).tolist(), topologies, strict=True)
        ]
        pts.sort(key=lambda p: (p["size"], -p["reward"]))
        front: list[dict[str, Any]] = []
        for p in pts:  # ascending size: keep a point only if it beats every smaller one
            if not front or p["reward"] > front[-1]["reward"]:
                if front and front[-1]["size"] == p["size"]:
                    continue
                front.append(p)
        self.points = front

    def summary(self) -> list[dict[str, float]]:
        """The front without topologies, for reports."""
        return [{"reward": p["reward"], "size": p["size"]} for p in self.points]
