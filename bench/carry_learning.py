"""Does one step of staleness cost learning? The straggler policy's carried pairs, emulated in-process.

    bench/carry_learning.py JOB.yaml [--late-fraction F,...] [--modes carry,drop] [--seeds 0,1]
                            [--max-env-steps N] [--eval-every K]

With ``es.minPairsFraction`` < 1 the aggregator closes an iteration once that fraction of its pairs
is in and hands the pairs still out, when they come, to the next iteration's step (one step stale:
esenas_aggregator/carry.py). Which pairs are late depends on the fleet; the slowest are those whose
two episodes ran longest. This runs the in-process trainer's rollouts and, each iteration, holds back
the ``--late-fraction`` of pairs with the most env steps (ties: by index), passing them to the next
``tell`` as :class:`esenas.results.Carried`, exactly as the aggregator does (mode ``carry``), or
leaves them out of every step (mode ``drop``: the straggler policy before carrying); fraction 0 is
the synchronous baseline. Every run of a seed sees the same rollouts for the same plan, so the difference is the
carrying alone. Prints one JSON line per run (the current weights' evaluation every --eval-every
iterations on 5 fresh episodes, the best of those and the last) and a final summary line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
from esenas.results import KIND_PAIR, Carried, Results
from esenas.rollout import evaluate_policy
from esenas.spec import load_job
from esenas.trainer import Trainer


def run(job_path: str, seed: int, late_fraction: float, max_env_steps: int, eval_every: int, mode: str = "carry") -> dict[str, object]:
    spec = load_job(job_path).spec
    fraction = 1.0 - late_fraction if late_fraction > 0 else 1.0
    spec = dataclasses.replace(spec, seed=seed, es=dataclasses.replace(spec.es, min_pairs_fraction=max(0.5, fraction)))
    trainer = Trainer(spec, workers=0)
    algo = trainer.algo
    assert algo is not None
    carried: Carried | None = None
    evals: list[tuple[int, float]] = []
    start = time.monotonic()
    try:
        while algo.env_steps < max_env_steps:
            plan = algo.ask()
            r = trainer.evaluate(plan)
            order = np.argsort(r.index)
            r = Results(r.index[order], r.reward_pos[order], r.reward_neg[order], r.steps[order], r.obs_count, r.obs_sum, r.obs_sumsq)
            pair = plan.items["kind"][r.index] == KIND_PAIR
            n_late = int(late_fraction * pair.sum())
            late = np.zeros(len(r), bool)
            if n_late:
                pairs = np.flatnonzero(pair)
                slowest = pairs[np.lexsort((pairs, -r.steps[pairs].astype(np.int64)))[:n_late]]
                late[slowest] = True
            keep = ~late
            now = Results(r.index[keep], r.reward_pos[keep], r.reward_neg[keep], r.steps[keep], r.obs_count, r.obs_sum, r.obs_sumsq)
            report = algo.tell(now, carried=carried)
            carried = None
            if n_late and mode == "carry":
                carried = Carried(plan.items["seed"][r.index[late]], r.reward_pos[late], r.reward_neg[late], r.steps[late])
            if (report.iteration + 1) % eval_every == 0:
                rs = evaluate_policy(algo.current_policy(), spec.environment, 5, seed=report.iteration)
                evals.append((algo.env_steps, float(np.mean(rs))))
    finally:
        trainer.close()
    scores = [e for _, e in evals]
    return {"job": job_path, "seed": seed, "late_fraction": late_fraction, "mode": mode if late_fraction else "sync", "env_steps": algo.env_steps,
            "iterations": algo.iteration, "eval_best": round(max(scores), 1) if scores else None,
            "eval_last": round(scores[-1], 1) if scores else None,
            "eval_mean_last_5": round(float(np.mean(scores[-5:])), 1) if scores else None,
            "wall_s": round(time.monotonic() - start, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("job")
    ap.add_argument("--late-fraction", default="0,0.2", help="comma-separated; 0 is the synchronous baseline")
    ap.add_argument("--modes", default="carry", help="for fractions above 0: carry, drop, or both")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--max-env-steps", type=int, default=3_000_000)
    ap.add_argument("--eval-every", type=int, default=4)
    args = ap.parse_args()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for late in (float(f) for f in args.late_fraction.split(",")):
            for mode in args.modes.split(",") if late else ["sync"]:
                row = run(args.job, seed, late, args.max_env_steps, args.eval_every, mode)
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary: dict[str, object] = {"bench": "carry_learning", "job": args.job, "max_env_steps": args.max_env_steps}
    for key in sorted({(float(r["late_fraction"]), str(r["mode"])) for r in rows}):  # type: ignore[arg-type]
        mine = [r for r in rows if (r["late_fraction"], r["mode"]) == key]
        summary[f"{key[1]}_{key[0]:g}"] = {k: float(np.median([float(r[k]) for r in mine])) for k in ("eval_best", "eval_mean_last_5")}  # type: ignore[arg-type]
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
