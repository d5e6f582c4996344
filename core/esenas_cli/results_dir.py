"""The results folder of a run: summary.json, policy.json, reward_curve.png, topology.png.

Shared by the in-process run and the distributed runtime, so both leave the same folder
that ``esenas eval`` replays.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Final

from esenas.algorithm import ESENAS
from esenas.policies import Policy
from esenas.spec import Job

from esenas_cli import plots

POLICY_FILE: Final = "policy.json"
SUMMARY_FILE: Final = "summary.json"


def default_dir(job: Job, root: str | Path = "runs") -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{job.name}-{stamp}"


def summary(algo: ESENAS, job: Job, reason: str, wall_s: float) -> dict[str, Any]:
    best = algo.best_policy()
    return {
        "job": job.name,
        "task": job.spec.environment.id,
        "policy": job.spec.policy.template + "".join(f"-h{h}" for h in job.spec.policy.hidden_layers),
        "topology": job.spec.policy.topology,
        "controller": job.spec.controller.type,
        "stopReason": reason,
        "iterations": algo.iteration,
        "episodes": algo.episodes,
        "envSteps": algo.env_steps,
        "bestReward": None if algo.best is None else algo.best_reward,
        "trainableParams": best["trainableParams"],
        "weightParams": best["weightParams"],
        "denseParams": best["denseParams"],
        "compression": best["compression"],
        "paretoFront": algo.pareto.summary(),
        "wallSeconds": wall_s,
        "seed": job.spec.seed,
    }


def write_results(out: Path, algo: ESENAS, job: Job, reason: str, wall_s: float) -> dict[str, Any]:
    """Write the whole folder and return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    best = algo.best_policy()
    (out / POLICY_FILE).write_text(json.dumps(best, indent=1))
    info = summary(algo, job, reason, wall_s)
    (out / SUMMARY_FILE).write_text(json.dumps(info, indent=2))
    (out / "history.json").write_text(json.dumps(algo.history))
    if algo.history:
        plots.reward_curve(algo.history, job.spec.environment.id, out / "reward_curve.png")
    plots.topology_picture(Policy.from_json(best), out / "topology.png")
    return info
