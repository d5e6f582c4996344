"""Semantic checks: specs that pass the schema but cannot run are caught with the field and the reason."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from esenas.spec import SpecError
from esenas_operator.validation import DISCRETE_ACTIONS, KNOWN_ENVS, environment_dims, validate_job


def _body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "esenas.dev/v1alpha1",
        "kind": "ESENASJob",
        "metadata": {"name": "j", "namespace": "ns", "uid": "u"},
        "spec": {"environment": {"id": "Hopper-v5"}, **spec},
    }


def test_table_matches_real_gymnasium() -> None:
    """The operator image has no MuJoCo; its static table must equal what the workers will see."""
    gym = pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    for env_id, (obs, act) in KNOWN_ENVS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gym.make(env_id)
        space = env.action_space
        got_act = int(space.n) if hasattr(space, "n") else int(space.shape[0])
        assert (int(env.observation_space.shape[0]), got_act) == (obs, act), env_id
        assert DISCRETE_ACTIONS.get(env_id) == (None if isinstance(space, gym.spaces.Box) else str(space)), env_id
        env.close()


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


@pytest.mark.parametrize("env_id", sorted(DISCRETE_ACTIONS))
def test_discrete_action_spaces_are_refused_with_the_field_and_the_reason(env_id: str) -> None:
    (msg,) = _errors(_body(environment={"id": env_id}))
    assert msg.startswith(f"spec.environment.id: {env_id!r} has a discrete action space (Discrete(")
    assert msg.endswith("only continuous Box actions are supported")
