"""``esenas run JOB.yaml``: train a job on this machine with the in-process trainer.

Parses the whole ESENASJob (the file a user would ``kubectl apply``), checks its sizes
against the environment, trains with a progress bar, and writes the results folder.
Ctrl-C stops after the current iteration's rollouts and still writes the results.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from esenas.algorithm import ESENAS, IterationReport
from esenas.spec import SpecError
from esenas.trainer import Trainer, default_workers

from esenas_cli.errors import load_checked_job, report_bad_spec
from esenas_cli.local_job import follow_local_workers
from esenas_cli.progress import Bar
from esenas_cli.results_dir import default_dir, write_results


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="train a job locally and write a results folder")
    p.add_argument("job", help="ESENASJob YAML (the same file you would kubectl apply)")
    p.add_argument("--workers", type=int, default=0, help="rollout processes (default: all cores)")
    p.add_argument("--output", type=Path, default=None, help="results folder (default: runs/<job>-<time>/)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    loaded = load_checked_job(args.job)
    if isinstance(loaded, int):
        return loaded
    job, obs_dim, act_dim = loaded
    out: Path = args.output or default_dir(job)
    workers = args.workers or default_workers()
    try:
        _, job = follow_local_workers(Path(args.job), job, workers, out)
    except SpecError as exc:
        return report_bad_spec(f"{args.job} with --workers {workers}", exc.errors)
    algo = ESENAS(job.spec, obs_dim, act_dim)
    trainer = Trainer(job.spec, workers=workers, algo=algo)
    print(f"training {job.name}: {job.spec.environment.id}, {algo.arch.kind} {job.spec.policy.template} "
          f"({algo.arch.num_params} trainable numbers), controller {job.spec.controller.type}, {trainer.workers} workers")
    start = time.monotonic()
    bar = Bar(job.spec.stopping)

    def on_report(r: IterationReport) -> None:
        now = time.monotonic()
        bar.update(iteration=algo.iteration, env_steps=r.total_env_steps, episodes=r.total_episodes,
                   elapsed_s=algo.elapsed_seconds, now=now, best=r.best_reward, mean=r.reward_mean)

    _, reason = trainer.run(on_report)
    bar.close()
    wall = time.monotonic() - start
    info = write_results(out, algo, job, reason, wall)
    best = info["bestReward"]
    print(f"stopped: {reason}; best reward {best if best is None else round(best, 1)} after "
          f"{algo.episodes} episodes, {algo.env_steps} env steps, {wall:.0f} s")
    print(f"results: {out}")
    return 0

