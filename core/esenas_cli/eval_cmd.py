"""``esenas eval RESULTS_DIR``: replay the best policy with numpy and print its mean reward."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from esenas.policies import Policy
from esenas.rollout import evaluate_policy
from esenas.spec import EnvironmentSpec

from esenas_cli.results_dir import POLICY_FILE


def register(sub: Any) -> None:
    p = sub.add_parser("eval", help="replay the best policy of a results folder")
    p.add_argument("results", type=Path, help="results folder (or a policy.json)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="first episode seed")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    path: Path = args.results / POLICY_FILE if args.results.is_dir() else args.results
    try:
        data = json.loads(path.read_text())
        policy = Policy.from_json(data)
        env = data["environment"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot load a policy from {path}: {exc}", file=sys.stderr)
        return 2
    env_spec = EnvironmentSpec(env["id"], env.get("kwargs", {}), int(env["maxEpisodeSteps"]))
    rewards = evaluate_policy(policy, env_spec, args.episodes, args.seed)
    print(f"{env_spec.id}: {policy.arch.kind} policy, {policy.trainable_params} trainable params "
          f"({policy.compression:.0%} compression)")
    print(f"mean reward over {len(rewards)} episodes: {np.mean(rewards):.1f} (std {np.std(rewards):.1f}, "
          f"min {np.min(rewards):.1f}, max {np.max(rewards):.1f})")
    return 0
