"""The rules of esenas.schema_rules_limits, in Python (the parser) and as the CRD's CEL (the fake
API server's evaluator): the same verdict on the same spec."""

from __future__ import annotations

from typing import Any

import celpy
import pytest
from celpy.adapter import json_to_cel
from esenas.es_defaults import survival_bonus, survival_bonus_cel
from esenas.spec import SpecError, parse_spec

from tests.unit.esenas.crd_cel import cel_causes

SHARDS = "worker Deployments (ceil(replicas / shardSize)), more than the 1000 the operator creates and watches for one job; raise shardSize"


def _cel_errors(spec: dict[str, Any]) -> list[str]:
    """The fields the CRD's CEL rules refuse in ``spec``, after the API server's defaulting."""
    return [f"{c['field']}: {c['message']}" for c in cel_causes(spec)]


def _parser_errors(spec: dict[str, Any]) -> list[str]:
    try:
        parse_spec(spec)
    except SpecError as exc:
        return [str(e) for e in exc.errors]
    return []


@pytest.mark.parametrize(
    ("replicas", "shard_size", "message"),
    [
        (100_000, 1, f"spec.workers.shardSize: 100000 {SHARDS} to at least 100 for 100000 replicas"),
        (1001, 1, f"spec.workers.shardSize: 1001 {SHARDS} to at least 2 for 1001 replicas"),
        (100_000, 99, f"spec.workers.shardSize: 1011 {SHARDS} to at least 100 for 100000 replicas"),
        (1000, 1, None),
        (100_000, 100, None),
        (100_000, 1000, None),
        (0, 1, None),
    ],
)
def test_the_number_of_worker_deployments_is_bounded(replicas: int, shard_size: int, message: str | None) -> None:
    spec = {"environment": {"id": "HalfCheetah-v5"}, "workers": {"replicas": replicas, "shardSize": shard_size}}
    assert _parser_errors(spec) == ([message] if message else [])
    cel = _cel_errors(spec)
    assert cel == ([f"spec.workers.shardSize: Invalid value: \"object\": spec.workers.shardSize: too many {SHARDS}"] if message else []), cel


def test_the_shard_bound_holds_with_the_default_shard_size() -> None:
    assert parse_spec({"environment": {"id": "HalfCheetah-v5"}, "workers": {"replicas": 100_000}}).workers.shard_size == 1000


HEALTHY = "must be a number on Hopper, Walker2d and Humanoid: the per-step survival bonus, which es.rewardShift removes by default"


@pytest.mark.parametrize(
    ("env_id", "bonus", "got"),
    [
        ("Hopper-v5", True, "boolean True"),
        ("Walker2d-v4", "1.5", "string '1.5'"),
        ("Humanoid-v5", [5], "list [5]"),
        ("Hopper-v5", None, "null"),
    ],
)
def test_a_survival_bonus_that_is_not_a_number_is_refused(env_id: str, bonus: Any, got: str) -> None:
    spec = {"environment": {"id": env_id, "kwargs": {"healthy_reward": bonus}}}
    assert _parser_errors(spec) == [f"spec.environment.kwargs.healthy_reward: {HEALTHY}, got {got}"]
    assert _cel_errors(spec) == [f"spec.environment.kwargs: Invalid value: \"object\": spec.environment.kwargs.healthy_reward {HEALTHY}"]


@pytest.mark.parametrize(
    ("env_id", "kwargs", "shift"),
    [
        ("Hopper-v5", {"healthy_reward": 2}, 2.0),
        ("Humanoid-v5", {"healthy_reward": 0.5}, 0.5),
        ("Walker2d-v5", {"healthy_reward": 3, "terminate_when_unhealthy": False}, 0.0),
        ("Hopper-v5", {}, 1.0),
        ("Ant-v5", {"healthy_reward": "x"}, 0.0),  # Ant's bonus is not the shift's: gymnasium judges its kwargs
    ],
)
def test_a_numeric_survival_bonus_or_another_task_passes_both(env_id: str, kwargs: dict[str, Any], shift: float) -> None:
    spec = {"environment": {"id": env_id, "kwargs": kwargs}}
    assert _cel_errors(spec) == []
    assert parse_spec(spec).es.reward_shift == shift


@pytest.mark.parametrize("bonus", [True, "abc", "1.5", None, [1], {"a": 1}, 2, 2.5])
def test_the_crds_survival_bonus_expression_never_fails_and_agrees_with_python(bonus: Any) -> None:
    """The CRD's rule on edits computes the default shift in CEL; double() of a non-number would fail
    there on every later edit of the job."""
    env = celpy.Environment()
    program = env.program(env.compile(survival_bonus_cel("self")))
    for env_id in ("Hopper-v5", "Humanoid-v4", "HalfCheetah-v5"):
        kwargs = {"healthy_reward": bonus}
        value = program.evaluate({"self": json_to_cel({"environment": {"id": env_id, "kwargs": kwargs}})})
        assert not isinstance(value, celpy.evaluation.CELEvalError), value
        assert float(value) == survival_bonus(env_id, kwargs)
