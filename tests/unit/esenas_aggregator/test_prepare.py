"""The aggregator sizes a task, or refuses one it cannot train, before it serves."""

from __future__ import annotations

from typing import Any

import pytest
from esenas.spec import SpecError, load_job
from esenas_aggregator.app import prepare


def _job(env_id: str) -> dict[str, object]:
    return {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "j"}, "spec": {"environment": {"id": env_id}}}


def test_a_discrete_task_is_sized_by_its_scores() -> None:
    assert prepare(load_job(_job("CartPole-v1"))) == (4, 2)  # one score per action (esenas.spaces)
    assert prepare(load_job(_job("MountainCarContinuous-v0"))) == (2, 1)


def test_an_action_space_no_policy_can_emit_is_a_bad_spec_not_a_crash_loop(env_module: Any) -> None:
    env_id = env_module("esenas_test_text_env", "spaces.Text(8)")
    with pytest.raises(SpecError) as info:
        prepare(load_job(_job(env_id)))
    (err,) = info.value.errors
    assert str(err).startswith(f"spec.environment.id: '{env_id}' has an action space a policy cannot emit (Text(")
