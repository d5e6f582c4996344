"""The documents the aggregator serves and writes: /status, /history, the result policy, and
the run folder's files (docs/contracts.md, docs/results.md).

Functions of the optimiser's state and the last iteration's report, so the process
(esenas_aggregator.app) only gathers its runtime facts and calls these.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from esenas.algorithm import ESENAS
from esenas.results import IterationReport


def topology_numbers(algo: ESENAS, last: IterationReport | None) -> tuple[int, int, float]:
    """(trainable parameters, dense parameters, compression) of the best topology so far."""
    if last is not None:
        return last.topology_size, last.dense_params, last.compression
    topo = algo.current_topology()
    arch = algo.arch
    return arch.trainable_params(topo), arch.dense_params, arch.compression(topo)


def status(algo: ESENAS, last: IterationReport | None, *, phase: str, reason: str, done: bool,
           connected: int, result_path: str, resumed_from: int | None) -> dict[str, Any]:
    """The /status document (docs/contracts.md)."""
    a, r = algo, last
    best = a.best_reward if math.isfinite(a.best_reward) else None
    size, dense, comp = topology_numbers(algo, last)
    return {
        "phase": phase,
        "iteration": a.iteration,
        "envSteps": a.env_steps,
        "episodes": a.episodes,
        "bestReward": best,
        "meanReward": finite(r.reward_mean) if r else _last(a.history, "reward_mean"),
        "evalReward": finite(r.eval_reward) if r else _last(a.history, "eval_reward"),
        "workersConnected": connected,
        "topologySize": size,
        "denseParams": dense,
        "compression": comp,
        "done": done,
        "reason": reason,
        "resultPath": result_path,
        "resumedFrom": resumed_from,
        "trial": a.trials.label or None,
    }


def history(algo: ESENAS) -> dict[str, Any]:
    """The /history document: every kept iteration, non-finite numbers as null."""
    return {"history": [{k: finite(v) if isinstance(v, float) else v for k, v in h.items()} for h in algo.history]}


def result(algo: ESENAS) -> dict[str, Any] | None:
    """The best policy so far, or None before the first iteration (and without a best)."""
    if algo.best is None and not algo.history:
        return None
    return algo.best_policy()


def write_json(path: Path, doc: Any) -> None:
    """Write ``doc`` as JSON to ``path`` atomically (a temporary file beside it, then a rename)."""
    tmp = path.parent / f".{path.name}.tmp"
    tmp.write_text(json.dumps(doc, indent=1, default=_json_default))
    tmp.replace(path)


def finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _last(history: list[dict[str, Any]], key: str) -> float | None:
    return finite(history[-1].get(key)) if history else None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
