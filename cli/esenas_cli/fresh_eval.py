"""The found policy replayed on fresh episodes: ``summary.json``'s ``freshEval``.

``bestReward`` is the score that chose the saved policy: one perturbed rollout without exact
evals, the mean of one iteration's exact evals with them. Either way it is the highest of many
noisy scores, so on a task with random starts or goals it overstates what the policy does
(Reacher-v5 at the spec's defaults: a ``bestReward`` of -0.6, and -8.1 over 10 new episodes).
``esenas run`` (both runtimes) and ``esenas fetch`` therefore replay the saved policy, as
``esenas eval`` does, on ``FRESH_EPISODES`` episodes seeded from ``FRESH_SEED`` (training seeds
its episodes at random in [0, 2**31), so these are episodes the choice never saw), and add the
result to the folder's summary before the clip. It is a note, never an error: a task that
cannot be built here (a module only the cluster's image has) records why.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
from esenas.envload import one_line
from esenas.rollout import evaluate_policy

from esenas_cli.eval_cmd import load_policy
from esenas_cli.results_dir import POLICY_FILE, add_to_summary

FRESH_EPISODES: Final = 10
FRESH_SEED: Final = 1_000_000


def add_fresh_eval(out: Path, episodes: int = FRESH_EPISODES, *, why_not: str = "") -> dict[str, Any]:
    """Replay ``out``'s policy on ``episodes`` fresh episodes (none when 0 or ``why_not`` is
    given), record ``freshEval`` in its summary.json and print one line. Returns the entry."""
    entry = _note(why_not or "turned off") if why_not or episodes <= 0 else _evaluate(out, episodes)
    info = add_to_summary(out, "freshEval", entry)
    if info is not None:
        print(line(entry, info.get("bestReward")))
    return entry


def line(entry: dict[str, Any], best: float | None) -> str:
    """What the console says about the entry, next to the training score ``best``."""
    if entry.get("mean") is None:
        return f"fresh episodes: none ({entry['note']})"
    text = (f"fresh episodes: the best policy scored {entry['mean']:.1f} on average over {entry['episodes']} "
            f"new episodes (std {entry['std']:.1f}, min {entry['min']:.1f}, max {entry['max']:.1f})")
    if best is not None and overstated(best, entry):
        text += (f"; its training score {best:.1f} was the highest of many noisy scores (what helps: "
                 "docs/tuning.md, es.exactEvals)")
    return text


def overstated(best: float, entry: dict[str, Any]) -> bool:
    """True when the training score lies well above the fresh episodes: beyond three standard
    errors of their mean and 5% of its size (a near-deterministic task shows no gap)."""
    margin = max(3.0 * entry["std"] / np.sqrt(entry["episodes"]), 0.05 * abs(best))
    return bool(best - entry["mean"] > margin)


def _note(why: str) -> dict[str, Any]:
    return {"mean": None, "note": f"not evaluated: {why}"}


def _evaluate(out: Path, episodes: int) -> dict[str, Any]:
    loaded = load_policy(out / POLICY_FILE)
    if isinstance(loaded, str):
        return _note(loaded)
    policy, env_spec = loaded
    start = time.monotonic()
    try:
        rewards = np.asarray(evaluate_policy(policy, env_spec, episodes, FRESH_SEED))
    except KeyboardInterrupt:  # Ctrl-C here skips only this: the results are already written
        return _note(f"interrupted (Ctrl-C); esenas eval {out} --seed {FRESH_SEED} replays them")
    # The end of a finished run: a task that cannot be built on this machine, or fails in an
    # unforeseen way, must not turn a trained result into an error.
    except Exception as exc:
        print(f"warning: the fresh episodes failed: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return _note(f"{type(exc).__name__}: {one_line(exc)}")
    return {"episodes": episodes, "firstSeed": FRESH_SEED, "mean": float(rewards.mean()),
            "std": float(rewards.std()), "min": float(rewards.min()), "max": float(rewards.max()),
            "seconds": round(time.monotonic() - start, 2)}
