"""The best efficiency any scheduler can reach behind a synchronous ES barrier, for bench/scale.py's
episode lengths: what the aggregator is measured against, computed without running it.

One iteration of W workers and P pairs per worker is simulated with zero overhead (no RPCs, no
aggregator time): a pair takes the sum of its two halves' episode lengths, drawn as
bench/scale.py draws them. Workers pull ``batch`` pairs at a time, in a random order, the moment
they are free (list scheduling, the best an on-line scheduler does without knowing lengths in
advance), and a batch's results arrive together when its last pair ends, as a worker pushes them. The iteration closes when ``es.minPairsFraction`` of the pairs are in. Efficiency is
bench/scale.py's: the episode time of the accepted pairs over W times the iteration's length.
``static`` is one lease per worker of all its pairs (batch = P), the layout of a fleet that makes
one call per iteration.

    .venv/bin/python bench/scale_ceiling.py [--workers 1000] [--pairs-per-worker 8,16,32,64]
        [--batch 1,8] [--min-pairs-fraction 1.0,0.9] [--episodes heavy-tailed] [--seeds 3]

Ends with ONE JSON line: a ``ceilings`` list, one entry per combination, median over seeds.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root
from bench.scale import episode_steps  # the bench's own episode lengths


def pair_lengths(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.array([episode_steps(kind, rng) + episode_steps(kind, rng) for _ in range(n)], np.float64)


def ceiling(lengths: np.ndarray, workers: int, batch: int, fraction: float) -> float:
    """Efficiency of list scheduling ``lengths`` on ``workers``, closing at ``fraction`` of them."""
    free = [(0.0, w) for w in range(workers)]
    heapq.heapify(free)
    ends = np.empty(lengths.size)
    for start in range(0, lengths.size, batch):
        t, w = heapq.heappop(free)
        chunk = lengths[start : start + batch]
        ends[start : start + chunk.size] = t + chunk.sum()  # a batch's results come back together
        heapq.heappush(free, (t + float(chunk.sum()), w))
    close = float(np.sort(ends)[int(np.ceil(fraction * lengths.size)) - 1])
    return float(lengths[ends <= close].sum() / (workers * close))  # every pair in by the close


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="1000")
    ap.add_argument("--pairs-per-worker", default="8,16,32,64")
    ap.add_argument("--batch", default="1,8", help="pairs per pull (P: one lease per worker, 'static')")
    ap.add_argument("--min-pairs-fraction", default="1.0,0.9")
    ap.add_argument("--episodes", choices=("fixed", "heavy-tailed"), default="heavy-tailed")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for w in (int(x) for x in args.workers.split(",")):
        for p in (int(x) for x in args.pairs_per_worker.split(",")):
            for f in (float(x) for x in args.min_pairs_fraction.split(",")):
                for b in [*(int(x) for x in args.batch.split(",")), p]:
                    effs = []
                    for seed in range(args.seeds):
                        lengths = pair_lengths(args.episodes, w * p, np.random.default_rng(seed))
                        effs.append(ceiling(lengths, w, min(b, p), f))
                    row = {"workers": w, "pairs_per_worker": p, "batch": min(b, p), "static": b >= p,
                           "min_pairs_fraction": f, "ceiling": round(float(np.median(effs)), 3)}
                    if row not in rows:
                        rows.append(row)
                        print(f"W={w} P={p} batch={row['batch']:>3} f={f}: ceiling {row['ceiling']}", flush=True)
    print(json.dumps({"bench": "scale_ceiling", "episodes": args.episodes, "ceilings": rows}))


if __name__ == "__main__":
    main()
