"""In-process trainer: ESENAS.ask/tell on this machine, rollouts in a process pool.

It uses exactly the ask/tell core and the :class:`~esenas.rollout.Evaluator` that the gRPC
runtime uses; only the transport differs. Work sent to the pool is seeds (the plan's items);
each worker process builds its environment once and sets new parameters once per version.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from esenas.algorithm import ESENAS, IterationReport, Plan, Results
from esenas.envload import one_line
from esenas.hang import HANG_FACTOR
from esenas.process_pool import PastDeadline, ProcessPool, WorkerDied, quiet_child
from esenas.results import KIND_PAIR
from esenas.rollout import Evaluator, env_dims
from esenas.spec import JobSpec
from esenas.topology import decode_topologies

_EVALUATOR: Evaluator | None = None
_VERSION = -1


def _init_worker(spec: JobSpec, parent: int) -> None:
    """Pool initializer: one Evaluator per process; Ctrl-C is the parent's to handle, and the
    process ends with its parent, even one killed by SIGKILL (``parent``, its PID taken before
    the fork, also catches a parent killed before this initializer ran).

    The fork copies the parent's Python handlers, such as ``esenas run``'s SIGTERM handler that
    raises KeyboardInterrupt to checkpoint and stop. A rollout process must not run it: the pool
    ends it with SIGTERM, and a SIGTERM to the whole process group must end it too, quietly. So
    SIGTERM gets the default action (the kernel ends the process); the pool forks with both
    signals blocked, so none lands before this runs.
    """
    global _EVALUATOR
    quiet_child(parent)
    _EVALUATOR = Evaluator(spec)


def _run_chunk(task: tuple[int, bytes, bytes, bytes, float, bytes, np.ndarray, float]) -> Results:
    global _VERSION
    version, params, mean, std, sigma, blob, items, limit_s = task
    assert _EVALUATOR is not None
    if version != _VERSION:
        _EVALUATOR.set_plan(
            np.frombuffer(params, np.float32), np.frombuffer(mean, np.float32),
            np.frombuffer(std, np.float32), sigma, decode_topologies(blob),
        )
        _VERSION = version
    return _EVALUATOR.run(items, limit_s)


def default_workers() -> int:
    """All the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class RolloutFailed(RuntimeError):
    """A rollout failed in the environment: it raised, or returned a non-finite reward."""


@dataclass
class Trainer:
    """Train one job spec locally; ``workers=1`` runs rollouts in this process."""

    spec: JobSpec
    workers: int = 0
    algo: ESENAS | None = None  # pass one to resume

    def __post_init__(self) -> None:
        self.workers = self.workers or default_workers()
        if self.algo is None:
            obs_dim, act_dim = env_dims(self.spec.environment)
            self.algo = ESENAS(self.spec, obs_dim, act_dim)
        self._pool: Any = None
        self._local: Evaluator | None = None
        #: A rollout past this is a hung environment, as in a worker (esenas.hang).
        self._limit_s = HANG_FACTOR * self.spec.workers.item_timeout_seconds

    def _chunks(self, plan: Plan) -> Iterator[np.ndarray]:
        # ~4 chunks per worker balance episodes that end early against per-task overhead
        n = max(1, -(-plan.items.size // (4 * self.workers)))
        for i in range(0, plan.items.size, n):
            yield plan.items[i : i + n]

    def evaluate(self, plan: Plan) -> Results:
        """All of the plan's items, rolled out on the pool (or here, with one worker)."""
        if self.workers == 1:
            if self._local is None:
                self._local = Evaluator(self.spec)
            self._local.set_plan(plan.params, plan.obs_mean, plan.obs_std, plan.sigma, plan.topologies)
            return self._local.run(plan.items, self._limit_s)
        if self._pool is None:
            self._pool = ProcessPool(self.workers, _run_chunk, _init_worker, (self.spec, os.getpid()))
        head = (plan.version, plan.params.tobytes(), plan.obs_mean.tobytes(), plan.obs_std.tobytes(), plan.sigma, plan.topology_blob())
        tasks = [(*head, chunk, self._limit_s) for chunk in self._chunks(plan)]
        # the deadline (stopping.deadlineSeconds) ends the iteration where it stands, as the aggregator does
        left = self.algo.seconds_left() if self.algo is not None else None
        deadline = None if left is None else time.monotonic() + left
        # in task order: observation sums must be added in the same order every run, or float
        # rounding differs and chaotic MuJoCo rollouts drift apart (determinism)
        try:
            return Results.concat(self._pool.map(tasks, deadline))
        except PastDeadline:
            self.close()  # its processes still roll out the dropped tasks
            raise

    def step(self) -> IterationReport:
        assert self.algo is not None
        plan = self.algo.ask()
        try:
            results = self.evaluate(plan)
        except (WorkerDied, KeyboardInterrupt, PastDeadline):
            raise
        except Exception as exc:  # the environment's own error, from a rollout
            raise RolloutFailed(f"environment {self.spec.environment.id!r}: {type(exc).__name__}: {one_line(exc)}") from exc
        pair = plan.items["kind"] == KIND_PAIR
        if not (np.isfinite(results.reward_pos).all() and np.isfinite(results.reward_neg[pair[results.index]]).all()):
            raise RolloutFailed(f"environment {self.spec.environment.id!r}: the environment returned a non-finite return")
        if not (np.isfinite(results.obs_sum).all() and np.isfinite(results.obs_sumsq).all()):
            raise RolloutFailed(f"environment {self.spec.environment.id!r}: the environment returned a non-finite observation")
        self._within_bounds(plan, results)
        return self.algo.tell(results)

    def _within_bounds(self, plan: Plan, results: Results) -> None:
        """Fail as the fleet's aggregator does (RewardOutOfBounds) when a return is beyond
        ``environment.maxAbsReward`` (plus |rewardShift| per step): the same job must end the same
        way in-process as with workers."""
        env, shift = self.spec.environment, abs(self.spec.es.reward_shift)
        pair = plan.items["kind"][results.index] == KIND_PAIR
        limit = env.max_abs_reward + shift * results.steps.astype(np.float64)
        worst = np.maximum(np.abs(results.reward_pos), np.where(pair, np.abs(results.reward_neg), 0.0))
        if (over := np.flatnonzero(worst > limit)).size:
            k = int(over[0])
            raise RolloutFailed(
                f"RewardOutOfBounds: spec.environment.maxAbsReward: item {int(results.index[k])} of iteration {plan.iteration} "
                f"returned {float(worst[k]):.4g}, beyond {env.max_abs_reward:g} (plus |es.rewardShift| per step): this task's own "
                "returns exceed it. Raise spec.environment.maxAbsReward above the task's largest return, or bound the returns "
                "(policy.clipActions true, where a control cost on raw actions is what grows)")

    def run(self, on_report: Callable[[IterationReport], bool | None] | None = None) -> tuple[ESENAS, str]:
        """Iterate until a stopping rule fires, ``on_report`` returns True, or Ctrl-C.

        Returns the state and why it stopped.
        """
        assert self.algo is not None
        try:
            while True:
                done, reason = self.algo.done()
                if done:
                    return self.algo, reason
                try:
                    report = self.step()
                except PastDeadline:  # mid-iteration: the iteration is dropped, the state is the last one's
                    return self.algo, self.algo.done()[1] or "deadline reached"
                if on_report is not None and on_report(report):
                    return self.algo, "stopped by the caller"
        except KeyboardInterrupt:
            return self.algo, "interrupted (Ctrl-C)"
        finally:
            self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._local is not None:
            self._local.close()
            self._local = None
