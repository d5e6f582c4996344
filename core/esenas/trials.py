"""Independent starts that keep the best (``spec.trials``): the optimiser's side.

A run's first iterations decide much of where it ends: on HalfCheetah and Hopper a seed that
settles into a poor gait in its first million steps seldom leaves it (bench/results/learning-history.md).
With ``trials.count`` = K > 1, :class:`esenas.algorithm.ESENAS` trains K starts one after the other,
each for ``trials.envSteps``: trial k has its own initial weights (the init stream's iteration k),
controller (seeded ``seed + k``) and, as the iteration count goes on, its own perturbations. A trial
is judged by the mean score of its last :data:`JUDGED` iterations, and the best trial's trainable
state is kept; after the last one, the kept trial goes on for the rest of the budget.

What is shared: the iteration count, the parameter version (each start is a new version), the step
and episode totals, the history, the Pareto front and the best policy (the best over all trials).
Pairs carried over a trial's end (``es.minPairsFraction``) are dropped: they were rolled out around
another trial's weights. ``trials.count`` = 1 (the default) changes nothing: trial 0 is the run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from esenas import es, streams
from esenas.best import Incumbent
from esenas.controllers import make_controller
from esenas.normalizer import RunningStats

if TYPE_CHECKING:
    from esenas.algorithm import ESENAS

log = logging.getLogger(__name__)

#: Iterations whose mean score judges a trial: a lucky iteration is not enough.
JUDGED: Final = 5
_rng = streams.stream  # by name here, so a test can watch the initial weights' stream


@dataclass
class Trials:
    """Where a run stands among its trials."""

    count: int = 1
    steps: int = 0  # env steps of each trial (0: no trials)
    index: int = 0  # the trial running; == count once the kept one goes on
    start_steps: int = 0  # the run's env steps when this trial started
    recent: list[float] = field(default_factory=list)  # this trial's last JUDGED scores
    scores: list[float] = field(default_factory=list)  # each ended trial's judged score
    kept: dict[str, Any] | None = None  # the best ended trial's trainable state (see snapshot)
    drop_carried: bool = False  # a trial started at the last tell: the next one drops carried pairs
    chosen: int | None = None  # the trial that went on, once the trials ended

    @property
    def running(self) -> bool:
        """Whether trials are still being run (False without trials and once the best goes on)."""
        return self.count > 1 and self.index < self.count

    @property
    def number(self) -> int | None:
        """The trial training now, counted from 1 (None without trials)."""
        if self.count <= 1:
            return None
        return self.index + 1 if self.running else (self.chosen or 0) + 1

    @property
    def label(self) -> str:
        """For progress lines: "trial 2/3" while trials run, "trial 2 of 3 kept" after, "" without."""
        if self.count <= 1:
            return ""
        return (
            f"trial {self.index + 1}/{self.count}"
            if self.running
            else f"trial {self.number} of {self.count} kept"
        )

    @property
    def best_index(self) -> int | None:
        return None if not self.scores else int(np.argmax(self.scores))

    def state_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> Trials:
        return cls(**{**d, "recent": list(d["recent"]), "scores": list(d["scores"])})


def start(algo: ESENAS, trial: int) -> None:
    """Fresh trainable state for ``trial`` (trial 0: the run's own, as without trials)."""
    spec = algo.spec
    algo.controller = make_controller(
        spec.controller, algo.space, (spec.seed + trial) % 2**63, fixed=algo.arch.default_topology()
    )
    algo.params = algo.arch.init_params(_rng(spec.seed, streams.INIT, trial))
    algo.optimizer = es.Optimizer(spec.es.optimizer, spec.es.step_size, algo.arch.num_params)
    algo.obs_stats = RunningStats.zeros(algo.obs_dim)
    algo.incumbent = Incumbent()


def snapshot(algo: ESENAS, trial: int) -> dict[str, Any]:
    """The trainable state of ``algo``, running ``trial``."""
    return {
        "trial": trial,
        "params": algo.params.copy(),
        "optimizer": algo.optimizer.state_dict(),
        "obs_stats": algo.obs_stats.state_dict(),
        "controller": algo.controller.state_dict(),
        "incumbent": algo.incumbent.state_dict(),
    }


def restore(algo: ESENAS, snap: dict[str, Any]) -> None:
    """Put the trainable state ``snap`` (from :func:`snapshot`) back into ``algo``."""
    start(algo, int(snap["trial"]))
    algo.params = np.array(snap["params"], np.float64)
    algo.optimizer = es.Optimizer.from_state_dict(snap["optimizer"])
    algo.obs_stats = RunningStats.from_state_dict(snap["obs_stats"])
    algo.controller.load_state_dict(snap["controller"])
    algo.incumbent = Incumbent.from_state_dict(snap["incumbent"])


def advance(algo: ESENAS, score: float) -> None:
    """After an iteration that scored ``score``: end the trial once it has had its steps, keep it
    if it is the best so far, and start the next (or, after the last, go on with the best)."""
    t = algo.trials
    t.drop_carried = False
    if not t.running:
        return
    t.recent = ([*t.recent, score] if math.isfinite(score) else t.recent)[-JUDGED:]
    if algo.env_steps - t.start_steps < t.steps:
        return
    judged = float(np.mean(t.recent)) if t.recent else -math.inf
    t.scores.append(judged)
    if t.best_index == t.index:
        t.kept = snapshot(algo, t.index)
    t.index += 1
    t.recent, t.start_steps, t.drop_carried = [], algo.env_steps, True
    if t.running:
        log.info(
            "trial %d of %d ended at %d env steps, judged %.1f; trial %d starts",
            t.index,
            t.count,
            algo.env_steps,
            judged,
            t.index + 1,
        )
        start(algo, t.index)
        return
    assert t.kept is not None
    log.info(
        "trial %d of %d ended at %d env steps, judged %.1f; trial %d (judged %.1f) goes on",
        t.index,
        t.count,
        algo.env_steps,
        judged,
        int(t.kept["trial"]) + 1,
        max(t.scores),
    )
    restore(algo, t.kept)
    t.chosen, t.kept = int(t.kept["trial"]), None
