"""Checks for specs that pass the CRD schema but cannot run.

The operator image has no MuJoCo, so environment sizes come from a static table of the standard
Gymnasium tasks (checked against real gymnasium in the unit tests), then esenas.spec.check_dimensions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from esenas.spec import FieldError, Job, SpecError, check_dimensions, load_job

#: (observation size, action size) of the standard tasks, as the policy sees them (esenas.spaces):
#: a Discrete action space counts its n scores, a Discrete or Tuple observation its one-hot size.
KNOWN_ENVS: Final[Mapping[str, tuple[int, int]]] = {
    "Ant-v5": (105, 8),
    "Ant-v4": (27, 8),
    "HalfCheetah-v5": (17, 6),
    "HalfCheetah-v4": (17, 6),
    "Hopper-v5": (11, 3),
    "Hopper-v4": (11, 3),
    "Walker2d-v5": (17, 6),
    "Walker2d-v4": (17, 6),
    "Swimmer-v5": (8, 2),
    "Swimmer-v4": (8, 2),
    "Humanoid-v5": (348, 17),
    "Humanoid-v4": (376, 17),
    "HumanoidStandup-v5": (348, 17),
    "HumanoidStandup-v4": (376, 17),
    "InvertedPendulum-v5": (4, 1),
    "InvertedPendulum-v4": (4, 1),
    "InvertedDoublePendulum-v5": (9, 1),
    "InvertedDoublePendulum-v4": (11, 1),
    "Reacher-v5": (10, 2),
    "Reacher-v4": (11, 2),
    "Pusher-v5": (23, 7),
    "CartPole-v1": (4, 2),
    "Pendulum-v1": (3, 1),
    "MountainCarContinuous-v0": (2, 1),
    "MountainCar-v0": (2, 3),
    "Acrobot-v1": (6, 3),
    "CartPole-v0": (4, 2),
    "Blackjack-v1": (45, 2),
    "FrozenLake-v1": (16, 4),
    "FrozenLake8x8-v1": (64, 4),
    "CliffWalking-v1": (48, 4),
    "CliffWalkingSlippery-v1": (48, 4),
    "Taxi-v4": (500, 6),
}


def environment_dims(env_id: str) -> tuple[int, int] | None:
    """Sizes of a known task; None for module:Class and namespaced ids, which only the worker can load.

    Raises SpecError for a plain Gymnasium id that is not a registered standard task, because the
    aggregator would crash-loop on it.
    """
    if ":" in env_id or "/" in env_id:
        return None
    dims = KNOWN_ENVS.get(env_id)
    if dims is None:
        name = env_id.rsplit("-v", 1)[0]
        versions = sorted(k for k in KNOWN_ENVS if k.rsplit("-v", 1)[0] == name)
        hint = f"; known versions: {', '.join(versions)}" if versions else ""
        raise SpecError(
            [
                FieldError(
                    "spec.environment.id",
                    f"unknown environment {env_id!r}: not a registered Gymnasium task{hint} "
                    "(for your own environment use module:Class or module:Name-vN; see docs/own-environment.md)",
                )
            ]
        )
    return dims


def validate_job(body: Mapping[str, Any]) -> Job:
    """Parse the whole ESENASJob and run the checks the schema cannot express, or raise SpecError."""
    doc = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            "name": body.get("metadata", {}).get("name"),
            "namespace": body.get("metadata", {}).get("namespace", "default"),
        },
        "spec": body.get("spec"),
    }
    job = load_job(doc)
    dims = environment_dims(job.spec.environment.id)
    # kwargs may resize a task (FrozenLake's map_name, HalfCheetah's exclude_current_positions_...):
    # then only the aggregator, which builds it, knows its sizes and checks them.
    if dims is not None and not job.spec.environment.kwargs:
        errors = check_dimensions(job.spec, *dims)
        if errors:
            raise SpecError(errors)
    return job
