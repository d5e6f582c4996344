"""One row of the learning benchmark (bench/learning_rows.py), and the phrases its titles share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
RESULTS: Final = ROOT / "bench" / "results" / "learning"


@dataclass(frozen=True)
class Row:
    title: str
    job: str  # relative to the repository root
    poster: str  # the poster's figure, in words
    poster_max: float | None = None  # the poster's maximum reward (higher is better)
    max_env_steps: int | None = None
    threshold: float | None = None  # ARS-style: episodes until the current weights score this
    poster_episodes: int | None = None  # the baseline's episodes to the threshold (lower is better)
    args: tuple[str, ...] = field(default=())
    #: the poster's comparison table this row belongs to (task), with its architecture's name
    compare: tuple[str, str] | None = None
    #: which comparison table the row is in (bench/learning_report.py, COMPARISONS)
    table: str = "defaults"
    #: a check of the spec's defaults on a task or policy no example covers
    defaults: bool = False

    def command(self, seed: int) -> list[str]:
        cmd = ["bench/learning.py", self.job, "--seed", str(seed), "--every", "4"]
        if self.max_env_steps is not None:
            cmd += ["--max-env-steps", str(self.max_env_steps)]
        if self.threshold is not None:
            cmd += ["--threshold", str(self.threshold)]
        return cmd + list(self.args)


#: Rows run on all pairs (es.topDirections 0), the default until 2026-12-03; unset it is now a
#: quarter of the pairs, what the -top16 rows (16 of 64) and the -top8 rows (8 of 32) set.
ALL_PAIRS: Final = ", all pairs (topDirections 0)"

#: Linear rows run with no exact evals, the linear default until 2026-12-04; unset it is now 8.
NO_EXACT: Final = ", no exact evals (the linear default until 2026-12-04)"

#: Rows with spec.trials: three starts of a tenth of the budget each, the best judged going on.
TRIALS3: Final = "3 trials of a tenth of the budget, the best going on (spec.trials.count 3)"

#: Rows whose weights start at a standard deviation of 0.1, not 1/sqrt(the observation size).
INIT01: Final = "initial weights at 0.1 (policy.initStd; unset, 1/sqrt(the observation size) for shared weights, of each layer's inputs otherwise)"
