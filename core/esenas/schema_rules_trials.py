"""Cross-field rules of ``spec.trials`` (esenas.spec_trials), in the table of esenas.schema_rules:
a trial's length needs a budget to take its default from, and the trials must leave the chosen one
steps to go on."""

from __future__ import annotations

from typing import Final

from esenas.schema_rulebase import Rule, Spec, fails, group
from esenas.spec_trials import DEFAULT_TRIAL_FRACTION, TrialsSpec

_COUNT: Final = f"(has(self.trials.count) ? self.trials.count : {TrialsSpec.count})"
_STEPS: Final = f"(has(self.trials.envSteps) ? self.trials.envSteps : self.stopping.maxEnvSteps / {DEFAULT_TRIAL_FRACTION})"


def _count(s: Spec) -> int:
    return int(group(s, "trials").get("count", TrialsSpec.count))


def _no_length(s: Spec) -> dict[str, str] | None:
    return fails(_count(s) > 1 and "envSteps" not in group(s, "trials") and "maxEnvSteps" not in group(s, "stopping"))


def _no_room(s: Spec) -> dict[str, str] | None:
    budget = group(s, "stopping").get("maxEnvSteps")
    if _count(s) <= 1 or budget is None:
        return None
    steps = group(s, "trials").get("envSteps", budget // DEFAULT_TRIAL_FRACTION)
    total = _count(s) * steps
    return fails(total >= budget, values=f": {_count(s)} x {steps} = {total} against {budget}")


TRIAL_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "", "trials.envSteps", f"{_COUNT} <= 1 || has(self.trials.envSteps) || has(self.stopping.maxEnvSteps)",
        "spec.trials.envSteps is required when trials.count > 1 and stopping.maxEnvSteps is unset "
        "(by default each trial takes a tenth of maxEnvSteps)",
        _no_length,
        ("trials.count", "trials.envSteps", "stopping.maxEnvSteps"),
    ),
    Rule(
        "", "trials.count", f"{_COUNT} <= 1 || !has(self.stopping.maxEnvSteps) || {_COUNT} * {_STEPS} < self.stopping.maxEnvSteps",
        "spec.trials.count: the trials (count x envSteps) must take fewer env steps than stopping.maxEnvSteps, "
        "so that the best goes on{values}",
        _no_room,
        ("trials.count", "trials.envSteps", "stopping.maxEnvSteps"),
        {"values": ""},
    ),
)
