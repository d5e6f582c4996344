"""The rules of esenas.schema_rules_trials, in Python (the parser) and as the CRD's CEL (the fake
API server's evaluator): the same verdict on the same spec."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.esenas.test_spec_rules_limits import _cel_errors, _parser_errors

_WHEN = "required when trials.count > 1 and stopping.maxEnvSteps is unset (by default each trial takes a tenth of maxEnvSteps)"
_ROOM = "the trials (count x envSteps) must take fewer env steps than stopping.maxEnvSteps, so that the best goes on"
#: (the field, the parser's reason, the CRD's message)
LENGTH = ("spec.trials.envSteps", _WHEN, f"spec.trials.envSteps is {_WHEN}")
ROOM = ("spec.trials.count", _ROOM, f"spec.trials.count: {_ROOM}")


@pytest.mark.parametrize(
    ("trials", "budget", "error", "values"),
    [
        ({"count": 3}, None, LENGTH, ""),
        ({"count": 3}, 10_000_000, None, ""),  # 3 x 1,000,000
        ({"count": 10}, 10_000_000, ROOM, ": 10 x 1000000 = 10000000 against 10000000"),
        ({"count": 2, "envSteps": 600}, 1000, ROOM, ": 2 x 600 = 1200 against 1000"),
        ({"count": 2, "envSteps": 400}, 1000, None, ""),
        ({"count": 2, "envSteps": 5000}, None, None, ""),  # a budget of iterations, or none
        ({"count": 1}, None, None, ""),
        ({"envSteps": 10**9}, 1000, None, ""),  # one trial: the length is not used
    ],
)
def test_trials_need_a_length_and_leave_the_best_steps(trials: dict[str, Any], budget: int | None, error: tuple[str, str, str] | None, values: str) -> None:
    spec: dict[str, Any] = {"environment": {"id": "HalfCheetah-v5"}, "trials": trials}
    if budget is not None:
        spec["stopping"] = {"maxEnvSteps": budget}
    assert _parser_errors(spec) == ([f"{error[0]}: {error[1]}{values}"] if error else [])
    assert _cel_errors(spec) == ([f'{error[0]}: Invalid value: "object": {error[2]}'] if error else [])
