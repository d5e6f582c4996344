"""The aggregator refuses, before it serves, a task it cannot train."""

from __future__ import annotations

import pytest
from esenas.spec import SpecError, load_job
from esenas_aggregator.app import prepare


def _job(env_id: str) -> dict[str, object]:
    return {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "j"}, "spec": {"environment": {"id": env_id}}}


def test_a_discrete_action_space_is_a_bad_spec_not_a_crash_loop() -> None:
    with pytest.raises(SpecError) as info:
        prepare(load_job(_job("CartPole-v1")))
    assert [str(e) for e in info.value.errors] == [
        "spec.environment.id: 'CartPole-v1' has a discrete action space (Discrete(2)): only continuous Box actions are supported"
    ]
    assert prepare(load_job(_job("MountainCarContinuous-v0"))) == (2, 1)
