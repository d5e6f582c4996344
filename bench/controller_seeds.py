"""How often the spec's default controller learns: many short seeds of one chromatic job.

    bench/controller_seeds.py [--seeds 0-35] [--iterations 12] [--learned 500]

Runs the InvertedPendulum-v5 example (manifests/examples/inverted-pendulum.yaml) made chromatic
(H41, 17 colours) with no controller fields, as tests/integration/test_default_controller_learns.py
does, for each seed with the in-process trainer. A seed counts as learning when its last 4
iterations' exact evals average at least --learned. Ends with ONE JSON line: seeds, iterations,
learned (how many seeds learned), best_at_target (how many saved a best of 1000) and per seed
[seed, best_reward, last-4 exact-eval mean]. Used to check that a change to the exact evals or
the controller's feedback does not change how often a run learns (bench/results/learning-history.md,
2026-12-04).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml
from esenas.spec import parse_spec
from esenas.trainer import Trainer

EXAMPLE = Path(__file__).resolve().parents[1] / "manifests" / "examples" / "inverted-pendulum.yaml"


def seed_range(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0-35", help="first-last, inclusive")
    ap.add_argument("--iterations", type=int, default=12)
    ap.add_argument("--learned", type=float, default=500.0)
    args = ap.parse_args()
    raw = yaml.safe_load(EXAMPLE.read_text())["spec"]
    target = raw["stopping"].pop("targetReward")
    raw["policy"] = {"template": "mlp", "hiddenLayers": [41], "topology": "partition", "partitions": 17}
    raw["stopping"]["maxIterations"] = args.iterations
    per_seed = []
    for seed in seed_range(args.seeds):
        algo, _ = Trainer(parse_spec({**raw, "seed": seed}), workers=2).run()
        last = float(np.mean([h["eval_reward"] for h in algo.history[-4:]]))
        per_seed.append([seed, round(float(algo.best_reward), 1), round(last, 1)])
        print(f"seed {seed}: best {algo.best_reward:.1f}, last 4 exact evals {last:.1f}", file=sys.stderr, flush=True)
    print(json.dumps({
        "seeds": len(per_seed), "iterations": args.iterations,
        "learned": sum(s[2] >= args.learned for s in per_seed),
        "best_at_target": sum(s[1] >= target for s in per_seed),
        "per_seed": per_seed,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
