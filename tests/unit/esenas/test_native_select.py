"""Which stepper a worker gets (environment.stepper), and that the worker's results do not depend on it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from esenas.algorithm import ESENAS
from esenas.native.base import NativeMujocoEnv
from esenas.rollout import Evaluator, env_dims, make_env
from esenas.spec import EnvironmentSpec, SpecError, parse_spec


def _env(env_id: str, stepper: str = "auto", **kwargs: Any) -> Any:
    env = make_env(EnvironmentSpec(env_id, kwargs, 30, stepper))
    env.close()
    return env


@pytest.mark.filterwarnings("ignore:.*HalfCheetah-v4 is out of date")
def test_auto_picks_native_for_covered_tasks_and_gymnasium_otherwise() -> None:
    assert isinstance(_env("HalfCheetah-v5"), NativeMujocoEnv)
    assert isinstance(_env("Hopper-v5", healthy_reward=2.0), NativeMujocoEnv)
    assert not isinstance(_env("Hopper-v5", "gymnasium"), NativeMujocoEnv)
    # a keyword the native stepper does not take, an older version, a task it does not cover
    assert not isinstance(_env("HalfCheetah-v5", xml_file="half_cheetah.xml"), NativeMujocoEnv)
    assert not isinstance(_env("HalfCheetah-v4"), NativeMujocoEnv)
    assert not isinstance(_env("MountainCarContinuous-v0"), NativeMujocoEnv)
    assert env_dims(EnvironmentSpec("Ant-v5")) == env_dims(EnvironmentSpec("Ant-v5", stepper="gymnasium")) == (105, 8)


def test_native_on_a_task_it_does_not_cover_names_the_field_and_why() -> None:
    assert isinstance(_env("Walker2d-v5", "native"), NativeMujocoEnv)
    with pytest.raises(SpecError, match=r"spec\.environment\.stepper: is native, but no native stepper for MountainCarContinuous-v0"):
        _env("MountainCarContinuous-v0", "native")
    with pytest.raises(SpecError, match=r"does not take render_mode"):
        _env("Swimmer-v5", "native", render_mode="rgb_array")


def test_the_spec_field_defaults_to_auto_and_refuses_other_values() -> None:
    assert parse_spec({"environment": {"id": "Hopper-v5"}}).environment.stepper == "auto"
    assert parse_spec({"environment": {"id": "Hopper-v5", "stepper": "gymnasium"}}).environment.stepper == "gymnasium"
    with pytest.raises(SpecError, match=r"spec\.environment\.stepper"):
        parse_spec({"environment": {"id": "Hopper-v5", "stepper": "warp"}})


@pytest.mark.parametrize("env_id", ["Hopper-v5", "HalfCheetah-v5"])
def test_evaluator_results_are_identical_with_either_stepper(env_id: str) -> None:
    """The worker's own path (perturbed pairs, exact evals, observation statistics) end to end."""
    results = []
    for stepper in ("native", "gymnasium"):
        spec = parse_spec({
            "environment": {"id": env_id, "maxEpisodeSteps": 60, "stepper": stepper},
            "policy": {"template": "mlp", "hiddenLayers": [8], "topology": "partition", "partitions": 5},
            "es": {"perturbations": 3, "exactEvals": 1, "sigma": 0.5},
        })
        ev = Evaluator(spec)
        algo = ESENAS(spec, ev.obs_dim, ev.act_dim)
        plan = algo.ask()
        ev.set_plan(plan.params, plan.obs_mean, plan.obs_std, plan.sigma, plan.topologies)
        results.append(ev.run(plan.items))
        ev.close()
    native, gym = results
    assert np.array_equal(native.reward_pos, gym.reward_pos)
    assert np.array_equal(native.reward_neg, gym.reward_neg, equal_nan=True)
    assert np.array_equal(native.steps, gym.steps) and native.steps.sum() > 0
    assert np.array_equal(native.obs_sum, gym.obs_sum) and np.array_equal(native.obs_sumsq, gym.obs_sumsq)
