"""The optimiser's state as plain data: the checkpoint's ``state_dict`` and its inverse.

Split from :mod:`esenas.algorithm` so the ES step and the checkpoint format change apart. The
history kept in the state is bounded by :func:`thin_history`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from esenas import es
from esenas.best import Incumbent
from esenas.normalizer import RunningStats
from esenas.spec import JobSpec
from esenas.topology import Topology
from esenas.trials import Trials

if TYPE_CHECKING:
    from esenas.algorithm import ESENAS

STATE_FORMAT: Final = "esenas.state/v1"
#: Most iterations the history keeps; past it the older half is thinned to every other entry,
#: so the checkpoint, ``/history`` and the reward curve stay bounded over any number of iterations.
MAX_HISTORY: Final = 2000


def thin_history(history: list[dict[str, Any]], limit: int = MAX_HISTORY) -> list[dict[str, Any]]:
    """``history`` if it fits in ``limit``; else its older half thinned to every other entry
    (the newest half is kept whole, so the recent curve keeps full resolution)."""
    if len(history) <= limit:
        return history
    half = len(history) // 2
    return history[:half:2] + history[half:]


def state_dict(algo: ESENAS) -> dict[str, Any]:
    """Everything needed to continue ``algo`` exactly (plain data and numpy arrays)."""
    return {
        "format": STATE_FORMAT,
        "spec": to_plain(algo.spec),
        "obs_dim": algo.obs_dim,
        "act_dim": algo.act_dim,
        "iteration": algo.iteration,
        "version": algo.version,
        "params": algo.params.copy(),
        "optimizer": algo.optimizer.state_dict(),
        "obs_stats": algo.obs_stats.state_dict(),
        "controller": algo.controller.state_dict(),
        "env_steps": algo.env_steps,
        "episodes": algo.episodes,
        "best_reward": float(algo.best_reward),
        "best": algo.best,
        "incumbent": algo.incumbent.state_dict(),
        "history": list(algo.history),
        "pareto": list(algo.pareto.points),
        "elapsed_seconds": algo.elapsed_seconds,
        "trials": algo.trials.state_dict(),
    }


def spec_of(d: dict[str, Any]) -> JobSpec:
    """The spec a state was saved with, after checking the state's format."""
    if d.get("format") != STATE_FORMAT:
        raise ValueError(f"state format: must be {STATE_FORMAT!r}, got {d.get('format')!r}")
    return typing.cast(JobSpec, from_plain(JobSpec, d["spec"]))


def load_state(algo: ESENAS, d: dict[str, Any]) -> None:
    """Put the state ``d`` into ``algo``, freshly built from ``spec_of(d)`` and the same dimensions."""
    algo.iteration, algo.version = int(d["iteration"]), int(d["version"])
    algo.params = np.array(d["params"], np.float64)
    algo.optimizer = es.Optimizer.from_state_dict(d["optimizer"])
    algo.obs_stats = RunningStats.from_state_dict(d["obs_stats"])
    algo.controller.load_state_dict(d["controller"])
    algo.env_steps, algo.episodes = int(d["env_steps"]), int(d["episodes"])
    algo.best_reward = float(d["best_reward"])
    algo.best = d["best"]
    if "incumbent" in d:
        algo.incumbent = Incumbent.from_state_dict(d["incumbent"])
    elif d["controller"].get("best_topology") is not None:  # checkpoints before esenas.best
        algo.incumbent = Incumbent(Topology.from_json(d["controller"]["best_topology"]))
    algo.history = list(d["history"])
    algo.pareto.points = list(d["pareto"])
    algo._elapsed_before = float(d["elapsed_seconds"])
    if "trials" in d:  # checkpoints before spec.trials had none
        algo.trials = Trials.from_state_dict(d["trials"])


def to_plain(obj: Any) -> Any:
    """A frozen spec dataclass as nested dicts/lists (JSON-able)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, typing.Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def from_plain(cls: type[Any], data: dict[str, Any]) -> Any:
    """Inverse of :func:`to_plain` for the spec dataclasses."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        v, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint):
            v = from_plain(typing.cast(type[Any], hint), v)
        elif typing.get_origin(hint) is tuple:
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)
