"""Semantic checks: specs that pass the schema but cannot run are caught with the field and the reason."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from esenas.spec import SpecError
from esenas_operator.validation import KNOWN_ENVS, environment_dims, validate_job


def _body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "esenas.dev/v1alpha1",
        "kind": "ESENASJob",
        "metadata": {"name": "j", "namespace": "ns", "uid": "u"},
        "spec": {"environment": {"id": "Hopper-v5"}, **spec},
    }


def test_table_matches_real_gymnasium() -> None:
    """The operator image has no MuJoCo; its static table must equal what the workers will see,
    the sizes of the adapted spaces (esenas.spaces: Discrete actions as n scores, one-hot observations)."""
    pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    from esenas.rollout import env_dims
    from esenas.spec import EnvironmentSpec

    for env_id, dims in KNOWN_ENVS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert env_dims(EnvironmentSpec(env_id)) == dims, env_id


def _errors(body: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        validate_job(body)
    return [str(e) for e in info.value.errors]


def test_unknown_environment_names_the_field_and_known_versions() -> None:
    (msg,) = _errors(_body(environment={"id": "Hopper-v9"}))
    assert msg.startswith("spec.environment.id: unknown environment 'Hopper-v9'")
    assert "Hopper-v4, Hopper-v5" in msg
    (msg,) = _errors(_body(environment={"id": "NoSuchTask-v0"}))
    assert "not a registered Gymnasium task" in msg


def test_custom_environments_are_left_to_the_workers() -> None:
    assert environment_dims("my_pkg.envs:Arm") is None
    assert environment_dims("myorg/Arm-v0") is None
    validate_job(_body(environment={"id": "my_pkg.envs:Arm"}, policy={"topology": "partition", "partitions": 10**6}))


def test_more_partitions_than_weights() -> None:
    # Hopper-v5 linear: 11 x 3 = 33 weights.
    validate_job(_body(policy={"topology": "partition", "partitions": 33}))
    (msg,) = _errors(_body(policy={"topology": "partition", "partitions": 34}))
    assert msg.startswith("spec.policy.partitions: must be <= the number of weights (33)")


def test_more_edges_than_the_network_has() -> None:
    (msg,) = _errors(_body(policy={"template": "mlp", "hiddenLayers": [4], "topology": "edges", "edges": 1000}))
    assert msg.startswith("spec.policy.edges:")


def test_parser_errors_come_through_with_their_fields() -> None:
    errors = _errors(_body(es={"perturbations": 2, "topDirections": 3}, workers={"replicas": "many"}))
    assert any(e.startswith("spec.es.topDirections") for e in errors)
    assert any(e.startswith("spec.workers.replicas") for e in errors)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "FrozenLake-v1", "Taxi-v4"])
def test_discrete_tasks_are_accepted_and_sized_by_their_scores(env_id: str) -> None:
    job = validate_job(_body(environment={"id": env_id}, policy={"template": "linear", "topology": "partition", "partitions": 4}))
    assert job.spec.environment.id == env_id
    obs, act = KNOWN_ENVS[env_id]
    (msg,) = _errors(_body(environment={"id": env_id}, policy={"topology": "partition", "partitions": obs * act + 1}))
    assert msg.startswith("spec.policy.partitions: must be <= the number of weights")


def test_kwargs_that_may_resize_a_task_leave_its_sizes_to_the_aggregator() -> None:
    # FrozenLake's 8x8 map has 64 observations, not the table's 16: the table must not refuse it.
    big = {"id": "FrozenLake-v1", "kwargs": {"map_name": "8x8"}}
    assert validate_job(_body(environment=big, policy={"template": "linear", "topology": "partition", "partitions": 100}))
    assert _errors(_body(environment={"id": "FrozenLake-v1"}, policy={"template": "linear", "topology": "partition", "partitions": 100}))


