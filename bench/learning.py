"""Learning benchmark: reward against episodes and env steps for one job.

    bench/learning.py JOB.yaml [--max-episodes N] [--max-env-steps N] [--threshold R]
                      [--seed S] [--workers N] [--controller TYPE] [--curve FILE]

Runs the in-process trainer (the same ask/tell core as the fleet), prints progress, and ends
with ONE JSON line: task, policy, topology, controller, trainable_params, dense_params,
compression, weight_params (weights stored, biases apart), episodes, env_steps, best_reward, eval_reward (mean of 10 fresh episodes of the
final policy), episodes_to_threshold (null if not reached), wall_s; for edge pruning also
kept_edges_by_block (the kept edges per block, 0 the observation layer) and live_edges (those on a
path from an observation to an action; the rest only add a constant or feed a unit no action reads). With --curve, every
iteration also appends one JSON line to FILE (iteration, env_steps, episodes, score,
reward_mean, best, eval: the current weights' evaluation when one was made, else null,
entropy, and trial with spec.trials): bench/learning_report.py draws the reward curves from these files.

As in ARS (Mania et al. 2018, section 4.2) the threshold is judged on the current weights,
evaluated every --eval-every iterations on --eval-episodes fresh episodes that are NOT counted
as training episodes (reported separately as eval_episodes). The baselines (ARS V2-t episodes,
the poster's rewards) are printed next to the figures in bench/results/learning.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np
import numpy.typing as npt
from esenas.algorithm import IterationReport
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.rollout import evaluate_policy
from esenas.spec import SpecError, load_job
from esenas.trainer import Trainer


def live_edges(arch: Architecture, kept: npt.NDArray[np.int64]) -> int:
    """How many kept edges lie on a path from an observation to an action. A unit is fed when a
    kept edge reaches it from a fed unit (observations are fed), read when a kept edge leads from
    it to a read unit (actions are read); an edge is live when its source is fed and its target read."""
    flat = np.zeros(arch.candidate_weights, bool)
    flat[kept] = True
    masks = [flat[lo:hi].reshape(b.n_out, b.n_in) for b, lo, hi in zip(arch.blocks, arch.offsets[:-1], arch.offsets[1:], strict=True)]
    last = len(arch.layers) - 1
    fed = [np.full(n, i == 0) for i, n in enumerate(arch.layers)]
    read = [np.full(n, i == last) for i, n in enumerate(arch.layers)]
    for b, m in sorted(zip(arch.blocks, masks, strict=True), key=lambda bm: bm[0].dst):
        fed[b.dst] |= (m & fed[b.src][None, :]).any(axis=1)
    for b, m in sorted(zip(arch.blocks, masks, strict=True), key=lambda bm: -bm[0].src):
        read[b.src] |= (m & read[b.dst][:, None]).any(axis=0)
    return sum(int((m & read[b.dst][:, None] & fed[b.src][None, :]).sum()) for b, m in zip(arch.blocks, masks, strict=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("job")
    ap.add_argument("--max-episodes", type=int, default=None)
    ap.add_argument("--max-env-steps", type=int, default=None)
    ap.add_argument("--threshold", type=float, default=None, help="stop when the score reaches it")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--controller", default=None, help="override spec.controller.type, e.g. random")
    ap.add_argument("--every", type=int, default=5, help="print progress every N iterations")
    ap.add_argument("--eval-every", type=int, default=2, help="evaluate the current weights every N iterations")
    ap.add_argument("--eval-episodes", type=int, default=5)
    ap.add_argument("--curve", default=None, help="append one JSON line per iteration to this file")
    args = ap.parse_args()
    try:
        job = load_job(args.job)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    spec = job.spec
    stop = dataclasses.replace(
        spec.stopping,
        max_iterations=10**8,
        max_episodes=args.max_episodes if args.max_episodes is not None else spec.stopping.max_episodes,
        max_env_steps=args.max_env_steps if args.max_env_steps is not None else spec.stopping.max_env_steps,
        target_reward=None,  # judged on evaluations of the current weights, below
    )
    spec = dataclasses.replace(spec, stopping=stop, seed=spec.seed if args.seed is None else args.seed)
    if args.controller:
        spec = dataclasses.replace(spec, controller=dataclasses.replace(spec.controller, type=args.controller))

    trainer = Trainer(spec, workers=args.workers)
    first_hit: list[int] = []
    evals: list[float] = []
    eval_episodes = [0]
    start = time.monotonic()
    curve = open(args.curve, "w", encoding="utf-8") if args.curve else None  # noqa: SIM115 (closed below)

    def on_report(r: IterationReport) -> bool:
        assert trainer.algo is not None
        if (r.iteration + 1) % args.eval_every == 0:
            rs = evaluate_policy(trainer.algo.current_policy(), spec.environment, args.eval_episodes, seed=r.iteration)
            evals.append(float(np.mean(rs)))
            eval_episodes[0] += args.eval_episodes
            if args.threshold is not None and not first_hit and evals[-1] >= args.threshold:
                first_hit.append(r.total_episodes)
        if curve is not None:
            evaluated = (r.iteration + 1) % args.eval_every == 0
            point = {
                "iteration": r.iteration, "env_steps": r.total_env_steps, "episodes": r.total_episodes,
                "score": round(r.score, 1), "reward_mean": round(r.reward_mean, 1), "best": round(r.best_reward, 1),
                "eval": round(evals[-1], 1) if evaluated else None,
                "entropy": None if r.controller_entropy is None else round(r.controller_entropy, 4),
                **({"trial": r.trial} if r.trial is not None else {}),
            }
            curve.write(json.dumps(point) + "\n")
            curve.flush()
        if r.iteration % args.every == 0 or first_hit:
            print(f"it {r.iteration:5d}  episodes {r.total_episodes:7d}  steps {r.total_env_steps:10d}  "
                  f"score {r.score:8.1f}  eval {evals[-1] if evals else float('nan'):8.1f}  "
                  f"best {r.best_reward:8.1f}  size {r.topology_size}  {time.monotonic() - start:6.0f} s", flush=True)
        return bool(first_hit)

    try:
        algo, reason = trainer.run(on_report)
    finally:
        if curve is not None:
            curve.close()
    wall = time.monotonic() - start
    print(f"stopped: {reason}", flush=True)
    # the final policy: the current weights if the threshold stopped the run, else the best seen
    policy = algo.current_policy() if first_hit else Policy.from_json(algo.best_policy())
    rewards = evaluate_policy(policy, spec.environment, 10, seed=10_000 + spec.seed)
    figures = {
        "task": spec.environment.id,
        "policy": spec.policy.template + "".join(f"-h{h}" for h in spec.policy.hidden_layers),
        "topology": spec.policy.topology,
        "controller": spec.controller.type,
        "seed": spec.seed,
        "weight_params": policy.arch.weight_params(policy.topology),  # the poster's "# weight-params"
        "trainable_params": policy.trainable_params,
        "dense_params": policy.dense_params,
        "compression": round(policy.compression, 4),
        "episodes": algo.episodes,
        "env_steps": algo.env_steps,
        "best_reward": round(max(float(algo.best_reward), *evals, -1e18), 1),
        "best_eval_reward": round(max(evals), 1) if evals else None,
        "eval_episodes": eval_episodes[0],
        "eval_reward": round(float(np.mean(rewards)), 1),
        "episodes_to_threshold": first_hit[0] if first_hit else None,
        "wall_s": round(wall, 1),
    }
    if policy.arch.kind == "edges":  # where the kept edges lie: layer index -> layer index, 0 the observation
        arch, kept = policy.arch, policy.arch.kept_edges(policy.topology)
        figures["kept_edges_by_block"] = {
            f"{b.src}->{b.dst}": int(np.count_nonzero((kept >= lo) & (kept < hi)))
            for b, lo, hi in zip(arch.blocks, arch.offsets[:-1], arch.offsets[1:], strict=True)
        }
        figures["live_edges"] = live_edges(arch, kept)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
