"""Native steppers for Gymnasium v5 MuJoCo tasks: the same numbers as ``gymnasium.make``, fewer CPU-seconds.

A worker spends its life stepping MuJoCo; Gymnasium's wrappers, checks and per-step Python cost
about a fifth of a HalfCheetah step (issue 15). Each stepper here loads the task's XML from the
installed Gymnasium, calls ``mj_step`` directly, and computes observation, reward, termination
and truncation as the v5 task does, seeded as ``gymnasium.Env.reset`` seeds. It covers a task's
v5 keyword arguments that change numbers (reward weights, ranges, noise, frame_skip,
observation switches); any other keyword falls back to Gymnasium.

This module imports neither mujoco nor gymnasium until a stepper is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from esenas.envload import episode_limit
from esenas.schema_model import FieldError, SpecError

if TYPE_CHECKING:
    from esenas.native.base import NativeMujocoEnv
    from esenas.spec import EnvironmentSpec

#: Env id -> "module:Class" under esenas.native (a module per task family).
TASKS: Final = {
    "HalfCheetah-v5": "planar:HalfCheetah",
    "Hopper-v5": "planar:Hopper",
    "Walker2d-v5": "planar:Walker2d",
    "Swimmer-v5": "planar:Swimmer",
    "Ant-v5": "spatial:Ant",
    "Humanoid-v5": "spatial:Humanoid",
    "InvertedPendulum-v5": "pendulum:InvertedPendulum",
    "InvertedDoublePendulum-v5": "pendulum:InvertedDoublePendulum",
}


def task_class(env_id: str) -> type[NativeMujocoEnv] | None:
    """The stepper class of an env id, or None when there is none."""
    target = TASKS.get(env_id)
    if target is None:
        return None
    module, _, name = target.partition(":")
    cls: type[NativeMujocoEnv] = getattr(importlib.import_module(f"esenas.native.{module}"), name)
    return cls


def unsupported(env_id: str, kwargs: Mapping[str, Any]) -> str | None:
    """Why the native stepper cannot run this task (None when it can)."""
    cls = task_class(env_id)
    if cls is None:
        return f"no native stepper for {env_id} (it has {', '.join(TASKS)})"
    extra = sorted(set(kwargs) - set(cls.DEFAULTS))
    if extra:
        return f"the native {env_id} does not take {', '.join(extra)} (it takes {', '.join(cls.DEFAULTS)})"
    return None


def make(env_id: str, kwargs: Mapping[str, Any], max_episode_steps: int) -> NativeMujocoEnv:
    """A native stepper for the task; ValueError when there is none (see :func:`unsupported`)."""
    why = unsupported(env_id, kwargs)
    if why is not None:
        raise ValueError(why)
    cls = task_class(env_id)
    assert cls is not None
    return cls(kwargs, max_episode_steps)


def build(env: EnvironmentSpec, fallback: Callable[[EnvironmentSpec], Any]) -> Any:
    """The environment a worker steps: native when ``env.stepper`` allows it and this module covers
    the id and kwargs, else ``fallback(env)`` (Gymnasium). ``stepper: native`` on a task it does not
    cover raises SpecError on ``spec.environment.stepper``, saying why."""
    if env.stepper != "gymnasium":
        why = unsupported(env.id, env.kwargs)
        if why is None:
            return make(env.id, env.kwargs, episode_limit(env))
        if env.stepper == "native":
            raise SpecError([FieldError("spec.environment.stepper", f"is native, but {why}")])
    return fallback(env)
