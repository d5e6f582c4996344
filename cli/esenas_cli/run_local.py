"""``esenas run JOB.yaml --in-process``: train a job in this process, rollouts in a process pool.

It checkpoints as the aggregator does (every ``spec.aggregator.checkpoint.everyIterations``,
and on stopping), so ``--resume`` continues it with either runtime. Ctrl-C or SIGTERM stops at
once, checkpoints the last completed iteration, and still writes the results folder.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

from esenas.algorithm import ESENAS, IterationReport
from esenas.es_defaults import chosen_by_task
from esenas.process_pool import WorkerDied
from esenas.spec import Job
from esenas.trainer import RolloutFailed, Trainer

from esenas_cli.clip import add_clip
from esenas_cli.errors import EXIT_FAILED, EXIT_INTERRUPTED
from esenas_cli.fresh_eval import FRESH_EPISODES, add_fresh_eval
from esenas_cli.progress import Bar
from esenas_cli.results_dir import best_text, write_results
from esenas_cli.run_folder import Resumed, save_checkpoint


class _Checkpoints:
    """The state after each completed iteration, kept encoded, written every N iterations.

    A signal lands anywhere, often between ``ask`` and ``tell``: the checkpoint and the results
    come from the last completed iteration, never from the half-done one.
    """

    def __init__(self, out: Path, algo: ESENAS, every: int) -> None:
        from esenas import checkpoint

        self.out, self.every, self.codec = out, every, checkpoint
        self.snapshot = self._encode(algo)

    def _encode(self, algo: ESENAS) -> bytes:
        return self.codec.encode({"algo": algo.state_dict(), "runtime": {"phase": "Running", "reason": ""}})

    def completed(self, algo: ESENAS) -> None:
        self.snapshot = self._encode(algo)
        if algo.iteration % self.every == 0:
            self.codec.CheckpointStore(self.out / "checkpoints").save(algo.iteration, self.snapshot)

    def last_completed(self) -> ESENAS:
        return ESENAS.from_state_dict(self.codec.decode(self.snapshot)["algo"])


def train(job: Job, obs_dim: int, act_dim: int, out: Path, workers: int, resumed: Resumed | None,
          source: str = "JOB.yaml", *, video: bool = True, fresh: int = FRESH_EPISODES) -> int:
    """Train (or continue) ``job`` into the run folder ``out``; returns the exit code."""
    algo = resumed.algo if resumed else ESENAS(job.spec, obs_dim, act_dim)
    trainer = Trainer(algo.spec, workers=workers, algo=algo)
    ckpts = _Checkpoints(out, algo, job.spec.aggregator.checkpoint.every_iterations)
    print(f"training {job.name}: {job.spec.environment.id}, {algo.arch.kind} {job.spec.policy.template} "
          f"({algo.arch.num_params} trainable numbers), controller {job.spec.controller.type}, "
          f"{trainer.workers} workers; folder {out}")
    if by_task := chosen_by_task(job):
        print(by_task)
    got: list[int] = []
    training = [True]

    def on_signal(signum: int, frame: Any) -> None:
        got.append(signum)
        if training[0] and len(got) == 1:  # later ones: the stop is already under way
            raise KeyboardInterrupt  # leaves the pool's wait at once; Trainer.run catches it

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    start = time.monotonic()
    bar = Bar(algo.spec.stopping)

    def on_report(r: IterationReport) -> None:
        ckpts.completed(algo)
        now = time.monotonic()
        bar.update(iteration=algo.iteration, env_steps=r.total_env_steps, episodes=r.total_episodes,
                   elapsed_s=algo.elapsed_seconds, now=now, best=r.best_reward, mean=r.reward_mean, trial=algo.trials.label)

    failed = ""  # a rollout process died (the OOM killer, a signal to it alone)
    try:
        try:
            _, reason = trainer.run(on_report)
        except KeyboardInterrupt:  # landed in Trainer.run's own clean-up
            trainer.close()
            reason = ""
        except (WorkerDied, RolloutFailed) as exc:
            failed = reason = f"failed: {exc}"
        training[0] = False
        bar.close()
        stopped = bool(got or failed)
        if stopped:
            if got:
                name = "Ctrl-C" if got[0] == signal.SIGINT else signal.Signals(got[0]).name
                reason = f"interrupted ({name})"
            algo = ckpts.last_completed()
            if algo.iteration == 0:
                print(f"{reason}: stopped before the first iteration; nothing to write", file=sys.stderr)
                return EXIT_INTERRUPTED if got else EXIT_FAILED
        save_checkpoint(out, algo, "Running" if stopped else "Succeeded", "" if stopped else reason)
        wall = time.monotonic() - start
        info = write_results(out, algo, job, reason, wall)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    add_fresh_eval(out, fresh, why_not="the run was interrupted" if stopped else "")
    add_clip(out, enabled=video and not stopped, why_not="the run was interrupted" if stopped else "--no-video")
    best = info["bestReward"]
    print(f"stopped: {reason}; best reward {best_text(best)} after "
          f"{algo.episodes} episodes, {algo.env_steps} env steps, {wall:.0f} s")
    if stopped:
        print(f"resume with: esenas run {source} --in-process --output {out} --resume")
        return EXIT_INTERRUPTED if got else EXIT_FAILED
    print(f"results: {out}")
    return 0
