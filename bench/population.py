"""Cost of each part of one ES-ENAS iteration against the population size.

For chromatic H41/17 at HalfCheetah-v5's dimensions with the policy-gradient (or another)
controller, at 1,000 / 10,000 / 100,000 pairs, times the parts the aggregator runs per
iteration: ``ask`` (seeds, and the sampler that stands for one topology per pair), drawing and
grouping the sampled topologies (done while the workers roll out, off the barrier; the
policy-gradient controller), the wire payload of the plan's topologies, the perturbation
prefetch (also off the barrier), the controller's feedback summed as results arrive (off the
barrier; esenas.feedback; none on the first iteration, whose baseline is the batch's own mean),
``tell`` (ES step, controller update, Pareto front, best policy; at the barrier), the normaliser
merge, the checkpoint encode and its size, and the ``/history`` size after many iterations.
Rewards are synthetic (no rollouts): this is the aggregator's own cost. Ends with ONE JSON line,
with each part's cost per pair and its growth from the smallest to the largest population
(1.0 = linear).

    .venv/bin/python bench/population.py [--pairs 1000,10000,100000] [--controller policy_gradient] [--settled]

``--settled`` first concentrates the policy-gradient controller as a run's is after ~10
iterations (each decision's likeliest choice at ~99.5%, ~0.05 nats per decision); without it the
controller starts uniform (2.83 nats), as a run's first iteration. Each size reports the
controller's entropy when its iterations end.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent

OBS, ACT = 17, 6


#: A settled controller's logit for each decision's likeliest choice (the others at 0).
SETTLED_LOGIT = 8.0


def settle(algo: Any, seed: int = 3) -> None:
    """Concentrate a policy-gradient controller on one random choice per decision."""
    pg = algo.controller
    logits = np.zeros_like(pg.logits)
    logits[np.arange(logits.shape[0]), np.random.default_rng(seed).integers(0, pg.space.choices)] = SETTLED_LOGIT
    pg.set_logits(logits)


def measure(pairs: int, controller: str, iterations: int, settled: bool = False) -> dict[str, Any]:
    from esenas import checkpoint
    from esenas.algorithm import ESENAS
    from esenas.normalizer import RunningStats
    from esenas.results import Results
    from esenas.spec import parse_spec

    doc = yaml.safe_load((ROOT / "manifests/examples/halfcheetah-chromatic-h41.yaml").read_text())
    doc["spec"]["es"]["perturbations"] = pairs
    doc["spec"]["es"].pop("topDirections", None)  # the default quarter, as these figures were measured
    doc["spec"]["controller"]["type"] = controller
    algo = ESENAS(parse_spec(doc["spec"]), OBS, ACT)
    if settled:
        settle(algo)
    parts = (
        "ask", "topology_prefetch_during_iteration", "topology_payload", "prefetch_during_iteration",
        "feedback_during_iteration", "tell", "normaliser_merge", "checkpoint",
    )
    t: dict[str, list[float]] = {k: [] for k in parts}
    ckpt_bytes = 0
    rng = np.random.default_rng(0)
    for _ in range(iterations):
        t0 = time.perf_counter()
        plan = algo.ask()
        t["ask"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        while not algo.prefetch_topologies(64):
            pass
        t["topology_prefetch_during_iteration"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plan.topology_blob()
        t["topology_payload"].append(time.perf_counter() - t0)
        n = plan.items.size
        pair = plan.items["kind"] == 0
        res = Results(
            plan.items["index"].copy(), rng.normal(1000, 50, n), np.where(pair, rng.normal(1000, 50, n), np.nan),
            np.full(n, 2000, np.uint32), 2000.0 * n, rng.normal(size=OBS) * n, np.abs(rng.normal(size=OBS)) * 4000 * n,
        )
        # The aggregator rebuilds the perturbations while the workers roll out; time that apart.
        t0 = time.perf_counter()
        while not algo.prefetch_perturbations(4096):
            pass
        t["prefetch_during_iteration"].append(time.perf_counter() - t0)
        # And sums the controller's feedback of the results as they arrive, in any order.
        t0 = time.perf_counter()
        done = np.zeros(n, bool)
        for part in np.array_split(rng.permutation(n), 64):
            done[part] = True
            algo.prefetch_feedback(done, res.reward_pos, res.reward_neg, res.steps, n)
        t["feedback_during_iteration"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        algo.tell(res)
        t["tell"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        algo.obs_stats.merge(RunningStats.from_sums(res.obs_count, res.obs_sum, res.obs_sumsq))
        t["normaliser_merge"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        blob = checkpoint.encode({"algo": algo.state_dict(), "runtime": {"phase": "Running", "reason": ""}})
        t["checkpoint"].append(time.perf_counter() - t0)
        ckpt_bytes = len(blob)
    return {
        "pairs": pairs,
        **{f"{k}_s": round(float(np.median(v)), 4) for k, v in t.items()},
        "checkpoint_bytes": ckpt_bytes,
        "controller_entropy": None if (h := algo.controller.entropy()) is None else round(h, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def history_bound(iterations: int) -> dict[str, int]:
    """The history after many iterations stays bounded (thinned), so /history and the checkpoint do."""
    from esenas.algorithm import MAX_HISTORY, thin_history

    hist: list[dict[str, Any]] = []
    for i in range(iterations):
        hist = thin_history([*hist, {"iteration": i}])
    return {"iterations": iterations, "history_entries": len(hist), "max_history": MAX_HISTORY}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", default="1000,10000,100000")
    p.add_argument("--controller", default="policy_gradient", choices=("random", "evolution", "policy_gradient"))
    p.add_argument("--iterations", type=int, default=3, help="iterations per size (median reported)")
    p.add_argument("--settled", action="store_true", help="concentrate the policy-gradient controller first")
    a = p.parse_args()
    rows = []
    for n in (int(x) for x in a.pairs.split(",")):
        if a.settled and a.controller != "policy_gradient":
            p.error("--settled needs --controller policy_gradient")
        row = measure(n, a.controller, a.iterations, a.settled)
        print(f"{n:>7} pairs: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "pairs"), flush=True)
        rows.append(row)
    lo, hi = rows[0], rows[-1]
    scale = hi["pairs"] / lo["pairs"]
    growth = {
        k[:-2]: round((hi[k] / lo[k]) / scale, 2) if lo[k] > 0 else None
        for k in lo if k.endswith("_s")
    }
    per_pair_us = {k[:-2]: round(1e6 * hi[k] / hi["pairs"], 2) for k in hi if k.endswith("_s")}
    print(json.dumps({
        "bench": "population", "dims": "HalfCheetah-v5 chromatic H41/17", "controller": a.controller, "settled": a.settled,
        "sizes": rows, "growth_vs_linear": growth, "us_per_pair_at_largest": per_pair_us,
        "history": history_bound(100_000),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
