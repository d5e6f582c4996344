"""The results folder of a run: summary.json, policy.json, history.json, reward_curve.png, topology.png.

Shared by the in-process run, the distributed runtime and ``esenas fetch`` (a cluster job), so
all three leave the same folder that ``esenas eval`` replays. The pictures are drawn here from
the documents, never stored: a fetched folder gets them from the same code.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from esenas.algorithm import ESENAS
from esenas.policies import Policy
from esenas.run_summary import (
    HISTORY_FILE,
    POLICY_FILE,
    REWARD_CURVE_FILE,
    SUMMARY_FILE,
    TOPOLOGY_FILE,
    summary,
)
from esenas.spec import Job

from esenas_cli import plots

__all__ = ["POLICY_FILE", "SUMMARY_FILE", "add_to_summary", "default_dir", "summary", "write_folder", "write_results"]


def default_dir(job: Job | str, root: str | Path = "runs") -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = job if isinstance(job, str) else job.name
    return Path(root) / f"{name}-{stamp}"


def write_folder(out: Path, policy: Mapping[str, Any], info: Mapping[str, Any],
                 history: Sequence[Mapping[str, Any]], task: str) -> None:
    """The documents as a run writes them, and the pictures drawn from them."""
    out.mkdir(parents=True, exist_ok=True)
    (out / POLICY_FILE).write_text(json.dumps(policy, indent=1))
    (out / SUMMARY_FILE).write_text(json.dumps(info, indent=2))
    (out / HISTORY_FILE).write_text(json.dumps(list(history)))
    if history:
        plots.reward_curve(history, task, out / REWARD_CURVE_FILE)
    plots.topology_picture(Policy.from_json(dict(policy)), out / TOPOLOGY_FILE)


def read_documents(folder: Path) -> tuple[dict[str, Any], dict[str, Any], list[Any]] | None:
    """(summary, policy, history) as the aggregator wrote them into ``folder``, or None when it
    wrote none (the run stopped before its first completed iteration)."""
    try:
        info, policy, history = (json.loads((folder / n).read_text()) for n in (SUMMARY_FILE, POLICY_FILE, HISTORY_FILE))
    except FileNotFoundError:
        return None
    if not isinstance(info, dict) or not isinstance(policy, dict) or not isinstance(history, list):
        raise ValueError(f"{folder} does not hold a summary, a policy and a history")
    return info, policy, history


def write_results(out: Path, algo: ESENAS, job: Job, reason: str, wall_s: float) -> dict[str, Any]:
    """Write the whole folder and return the summary."""
    info = summary(algo, job, reason, wall_s)
    write_folder(out, algo.best_policy(), info, algo.history, job.spec.environment.id)
    return info


def add_to_summary(out: Path, key: str, entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """Set ``key`` of the summary.json in ``out`` to ``entry`` (the entries added after the folder
    is written: ``freshEval``, ``video``); returns the summary, or None when the folder has none."""
    path = out / SUMMARY_FILE
    if not path.exists():
        return None
    info: dict[str, Any] = json.loads(path.read_text())
    info[key] = dict(entry)
    path.write_text(json.dumps(info, indent=2))
    return info


def best_text(best: float | None) -> str:
    """summary.json's bestReward as the closing lines print it."""
    if best is None:  # stopped before the first iteration's evaluations came in
        return "none yet (no iteration completed)"
    return f"{round(best, 1)}"
