"""Cross-field rules that bound what the operator and the tasks can take, in the table of
esenas.schema_rules: the number of worker Deployments, and the type of the survival bonus that
es.rewardShift's default reads (a non-number would fail the CRD's CEL, esenas.es_defaults)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from esenas.es_defaults import SURVIVAL_TASK_ID, is_number, is_number_cel
from esenas.schema_rulebase import Rule, Spec, fails
from esenas.schema_validate import type_name
from esenas.spec_deploy import MAX_WORKER_SHARDS


def _shards(w: Spec) -> dict[str, str] | None:
    replicas, size = w["replicas"], w["shardSize"]
    count = -(-replicas // size)
    return fails(count > MAX_WORKER_SHARDS, count=f"{count}", least=f" to at least {-(-replicas // MAX_WORKER_SHARDS)} for {replicas} replicas")


def _healthy_reward(env: Spec) -> dict[str, str] | None:
    kwargs = env.get("kwargs")
    if isinstance(kwargs, Mapping) and "healthy_reward" in kwargs and re.match(SURVIVAL_TASK_ID, env["id"]):
        bonus = kwargs["healthy_reward"]
        return fails(not is_number(bonus), got=", got null" if bonus is None else f", got {type_name(bonus)} {bonus!r}")
    return None


LIMIT_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "workers", "shardSize", f"self.replicas <= {MAX_WORKER_SHARDS} * self.shardSize",
        "spec.workers.shardSize: {count} worker Deployments (ceil(replicas / shardSize)), more than the "
        f"{MAX_WORKER_SHARDS} the operator creates and watches for one job; raise shardSize{{least}}",
        _shards,
        ("workers.replicas", "workers.shardSize"),
        {"count": "too many", "least": ""},
    ),
    Rule(
        "environment", "kwargs",
        f"!self.id.matches('{SURVIVAL_TASK_ID}') || !has(self.kwargs) || !('healthy_reward' in self.kwargs) || "
        + is_number_cel("self.kwargs.healthy_reward"),
        "spec.environment.kwargs.healthy_reward must be a number on Hopper, Walker2d and Humanoid: the per-step "
        "survival bonus, which es.rewardShift removes by default{got}",
        _healthy_reward,
        ("environment.id", "environment.kwargs"),
        {"got": ""},
        detail="healthy_reward",
    ),
)
