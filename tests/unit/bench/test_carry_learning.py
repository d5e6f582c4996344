"""bench/carry_learning.py end to end, small: the synchronous, carried and dropped runs of a seed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def test_each_mode_runs_and_the_summary_names_them(tmp_path: Path, bench_line: Callable[..., dict[str, Any]]) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "c"},
                                   "spec": {"environment": {"id": "CartPole-v1", "maxEpisodeSteps": 50},
                                            "es": {"perturbations": 10, "exactEvals": 0, "topDirections": 0}}}))
    line = bench_line("carry_learning.py", str(job), "--late-fraction", "0,0.2", "--modes", "carry,drop", "--seeds", "0",
                      "--max-env-steps", "3000", "--eval-every", "1")
    assert line["bench"] == "carry_learning" and set(line) >= {"sync_0", "carry_0.2", "drop_0.2"}
    assert all(line[k]["eval_best"] is not None for k in ("sync_0", "carry_0.2", "drop_0.2"))
    assert line["max_env_steps"] == 3000

