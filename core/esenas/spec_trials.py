"""The spec's ``trials`` group: several independent starts, of which the best goes on.

Split from :mod:`esenas.spec` (its dataclasses are re-exported there); the optimiser's side is
:mod:`esenas.trials`, the cross-field rules are in :mod:`esenas.schema_rules_trials`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from esenas.schema_model import spec_field

#: Most trials of one job.
MAX_TRIALS: Final = 64
#: A trial's default length, as a fraction of stopping.maxEnvSteps.
DEFAULT_TRIAL_FRACTION: Final = 10


@dataclass(frozen=True)
class TrialsSpec:
    DOC: ClassVar[str] = (
        "Independent starts that keep the best (docs/tuning.md): count trials, each with its own seed (seed, "
        "seed+1, ...: its own initial weights, perturbations and controller), are trained for envSteps one after "
        "the other; then the one whose last 5 iterations scored highest goes on, and the others are dropped. "
        "Their steps count in stopping.maxEnvSteps. A run whose seed settles early into a poor gait is left "
        "behind instead of holding the result down. The best policy is kept over all of them."
    )

    count: int = spec_field("Number of trials; 1 means one run, no trials.", 1, minimum=1, maximum=MAX_TRIALS)
    env_steps: int | None = spec_field(
        "Environment steps of each trial (it ends at the first iteration end past them). Unset means a "
        "tenth of stopping.maxEnvSteps, which must then be set; count x envSteps must be below it.",
        None, minimum=1, maximum=10**13,
    )

    def steps(self, max_env_steps: int | None) -> int:
        """Each trial's env steps under the budget ``max_env_steps`` (0 when there are no trials)."""
        if self.count <= 1:
            return 0
        if self.env_steps is not None:
            return self.env_steps
        return max(1, (max_env_steps or 0) // DEFAULT_TRIAL_FRACTION)
