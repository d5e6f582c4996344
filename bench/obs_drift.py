"""How far do honest workers' observation statistics stray from the normaliser they were planned with?

    bench/obs_drift.py JOB.yaml [--iterations K] [--batch B] [--seed S]

A worker pushes, with each lease's results, the count, sum and sum of squares of the observations it
saw (docs/contracts.md), and the aggregator merges them into the cumulative normaliser. A client
holding the token could push statistics far from any rollout's and move the normaliser for good. Any
per-batch clamp against a reference (the plan's normaliser, or in the first iteration the batches'
own medians) must leave honest batches alone, so this measures how far honest batches go.

It trains the job in this process (the same ask/tell and Evaluator as the fleet), rolls each
iteration's items out in batches of ``--batch`` items (a lease), and for each batch takes, over the
components that vary (the normaliser's flat ones excluded):

* ``z_mean``: the largest |batch mean - reference mean| / reference std;
* ``z_rms``: the largest sqrt(batch mean of (x - reference mean)^2) / reference std.

The reference is the plan's normaliser from the second iteration on; in the first, which has none,
each component's median over the batches of their means, scaled by the larger of the median of
their standard deviations and 1.4826 x the median absolute deviation of their means. Prints one JSON
line per iteration and a final summary line with the largest values and the batches over 10, 30
and 100 reference standard deviations.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import numpy.typing as npt
from esenas.algorithm import ESENAS
from esenas.normalizer import FLAT_STD
from esenas.results import Results
from esenas.rollout import Evaluator, env_dims
from esenas.spec import load_job

F64 = npt.NDArray[np.float64]
THRESHOLDS = (10, 30, 100)


def _moments(r: Results) -> tuple[F64, F64]:
    """A batch's per-component mean and mean square."""
    return r.obs_sum / r.obs_count, r.obs_sumsq / r.obs_count


def _robust_reference(batches: list[Results]) -> tuple[F64, F64]:
    """The first iteration's reference: medians over the batches (see the module's docstring)."""
    means = np.array([_moments(b)[0] for b in batches])
    stds = np.sqrt(np.maximum(np.array([_moments(b)[1] for b in batches]) - means**2, 0.0))
    centre = np.median(means, axis=0)
    scale = np.maximum(np.median(stds, axis=0), 1.4826 * np.median(np.abs(means - centre), axis=0))
    return centre, np.where(scale > 1e-8, scale, FLAT_STD)


def drift(batch: Results, mean: F64, std: F64) -> tuple[float, float]:
    """(z_mean, z_rms) of one batch against a reference, over its components that vary."""
    m, sq = _moments(batch)
    vary = std < FLAT_STD
    if not vary.any():
        return 0.0, 0.0
    second = np.maximum(sq - 2.0 * mean * m + mean * mean, 0.0)  # the batch's mean of (x - mean)^2
    return float(np.max(np.abs(m - mean)[vary] / std[vary])), float(np.sqrt(np.max(second[vary] / std[vary] ** 2)))


def run(job_path: str, iterations: int, batch: int, seed: int | None = None) -> dict[str, object]:
    spec = load_job(job_path).spec
    if seed is not None:
        spec = dataclasses.replace(spec, seed=seed)
    algo = ESENAS(spec, *env_dims(spec.environment))
    ev = Evaluator(spec)
    z_mean, z_rms, batches, over = 0.0, 0.0, 0, dict.fromkeys(THRESHOLDS, 0)
    try:
        for _ in range(iterations):
            plan = algo.ask()
            ev.set_plan(plan.params, plan.obs_mean, plan.obs_std, plan.sigma, plan.topologies)
            parts = [ev.run(plan.items[i : i + batch], 1e9) for i in range(0, plan.items.size, batch)]
            parts = [p for p in parts if p.obs_count > 0]
            if algo.obs_stats.count >= 2:
                mean, std = algo.obs_stats.mean_std()
            else:
                mean, std = _robust_reference(parts)
            z = np.array([drift(p, mean, std) for p in parts])
            report = algo.tell(Results.concat(parts))
            worst = z.max(axis=1)
            row = {"iteration": plan.iteration, "batches": len(parts), "z_mean_max": round(float(z[:, 0].max()), 2),
                   "z_rms_max": round(float(z[:, 1].max()), 2), "score": round(report.score, 1),
                   **{f"over_{t}": int((worst > t).sum()) for t in THRESHOLDS}}
            print(json.dumps(row), flush=True)
            z_mean, z_rms, batches = max(z_mean, float(z[:, 0].max())), max(z_rms, float(z[:, 1].max())), batches + len(parts)
            for t in THRESHOLDS:
                over[t] += int((worst > t).sum())
    finally:
        ev.close()
    return {
        "bench": "obs_drift", "job": job_path, "task": spec.environment.id, "seed": spec.seed, "batch": batch,
        "iterations": iterations, "batches": batches, "z_mean_max": round(z_mean, 2), "z_rms_max": round(z_rms, 2),
        **{f"over_{t}": n for t, n in over.items()},
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("job")
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--batch", type=int, default=1, help="items per batch (a worker's lease); 1 is the noisiest")
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args(argv)
    if a.iterations < 1 or a.batch < 1:
        p.error("--iterations and --batch must be at least 1")
    print(json.dumps(run(a.job, a.iterations, a.batch, a.seed)))


if __name__ == "__main__":
    main()
