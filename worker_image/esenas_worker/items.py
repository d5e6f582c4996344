"""Rolling a lease's items out one at a time, and telling an environment's failure from a result.

An honest worker whose environment raises, or returns a non-finite reward, has no result to send
for that item. It stops the lease there and reports the item as failed, with one line saying why
(``ExchangeRequest.failed_items``, ``failure``); it does not crash. The aggregator re-issues the item
to another worker first, and when a second worker's rollout of the same item fails too (a rollout
is a function of its item), it fails the job with reason ``EnvironmentFailed`` and that line
(esenas_aggregator.bounds.ItemWatch). Before, the worker process died with a traceback, its
replacement took the same item and died too, and the job waited without a word.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from esenas.envload import one_line
from esenas.hang import time_limit, where
from esenas.results import KIND_PAIR

log = logging.getLogger(__name__)


@dataclass
class Rolled:
    """What a lease's rollouts gave: the results of its first items, and the item that failed (if any)."""

    parts: list[Any] = field(default_factory=list)
    failed: int | None = None
    failure: str = ""


def nonfinite(res: Any, kind: int) -> str:
    """Why ``res`` (one item's Results) is not a result, or "" when its returns and its
    observations' statistics (with observation normalisation) are finite."""
    returns = [float(res.reward_pos[0])] + ([float(res.reward_neg[0])] if kind == KIND_PAIR else [])
    bad = [r for r in returns if not np.isfinite(r)]
    if bad:
        return f"the environment returned a non-finite return ({bad[0]})"
    if not (np.isfinite(res.obs_sum).all() and np.isfinite(res.obs_sumsq).all()):
        return "the environment returned a non-finite observation"
    return ""




def roll_out(evaluator: Any, items: np.ndarray, stopping: Callable[[], bool], worker_id: str, env_id: str,
             limit_s: float | None = None) -> Rolled:
    """Roll ``items`` out in order, one at a time (so a stop is served within a rollout), until a
    stop or the first failure; a rollout past ``limit_s`` is a failure (:func:`time_limit`)."""
    out = Rolled()
    for i in range(len(items)):
        if stopping():
            break
        item = items[i : i + 1]
        try:
            with time_limit(limit_s):
                res = evaluator.run(item)
            why = nonfinite(res, int(item["kind"][0]))
        except Exception as exc:  # the environment's own error: reported, not a crash
            res, why = None, f"{type(exc).__name__}: {one_line(exc)}{where(exc)}"
        if why:
            out.failed, out.failure = int(item["index"][0]), f"environment {env_id!r}: {why}"
            log.warning("worker %s: the rollout of item %d failed: %s; reported, the item goes to another worker",
                        worker_id, out.failed, out.failure)
            break
        out.parts.append(res)
    return out
