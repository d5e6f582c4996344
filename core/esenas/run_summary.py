"""The result files of a run, and its ``summary.json``: one definition for every runtime.

``esenas run`` (both runtimes) writes this summary into its folder; the aggregator serves the
same document at ``GET /summary``, the operator stores it with the result, and ``esenas fetch``
writes it back, so a cluster job's folder has exactly the local keys (docs/results.md).
"""

from __future__ import annotations

from typing import Any, Final

from esenas.algorithm import ESENAS
from esenas.spec import Job

POLICY_FILE: Final = "policy.json"
SUMMARY_FILE: Final = "summary.json"
HISTORY_FILE: Final = "history.json"
REWARD_CURVE_FILE: Final = "reward_curve.png"
TOPOLOGY_FILE: Final = "topology.png"
#: The documents a result is made of; the pictures are drawn from them.
DOCUMENTS: Final = (SUMMARY_FILE, POLICY_FILE, HISTORY_FILE)


def summary(algo: ESENAS, job: Job, reason: str, wall_s: float) -> dict[str, Any]:
    """What a run found and what it cost; reward is maximised."""
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
