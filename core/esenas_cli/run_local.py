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
    _, reason = trainer.run(_progress(job.spec.stopping.max_iterations, start))
    wall = time.monotonic() - start
    info = write_results(out, algo, job, reason, wall)
    best = info["bestReward"]
    print(f"stopped: {reason}; best reward {best if best is None else round(best, 1)} after "
          f"{algo.episodes} episodes, {algo.env_steps} env steps, {wall:.0f} s")
    print(f"results: {out}")
    return 0


def _progress(total: int, start: float) -> Any:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="it", dynamic_ncols=True)

    def on_report(r: IterationReport) -> None:
        rate = r.total_env_steps / max(time.monotonic() - start, 1e-9)
        bar.set_postfix_str(f"best {r.best_reward:.1f} mean {r.reward_mean:.1f} {rate:,.0f} steps/s")
        bar.update(1)

    return on_report
