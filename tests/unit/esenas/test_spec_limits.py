"""Specs that pass the schema's shape but ask for what nothing can run: refused in one line
naming the field, before anything is allocated or any rollout starts."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
from esenas.spaces import adapt
from esenas.spec import SpecError, check_dimensions, parse_spec
from esenas.spec_checks import MAX_ACT_DIM, MAX_OBS_DIM, MAX_WEIGHTS
from esenas.trainer import RolloutFailed, Trainer

BASE: dict[str, Any] = {"environment": {"id": "HalfCheetah-v5"}}


def _error(spec: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    return str(info.value)


@pytest.mark.parametrize(("section", "key", "message"), [
    ("stopping", "targetReward", "spec.stopping.targetReward: must be finite, got a 401-digit number"),
    ("es", "rewardShift", "spec.es.rewardShift: must be finite, got a 401-digit number"),
    ("stopping", "maxEnvSteps", "spec.stopping.maxEnvSteps: must be a 64-bit integer (at most 9223372036854775807), got a 401-digit number"),
])
def test_a_whole_number_past_what_json_carries_is_refused_not_a_traceback(section: str, key: str, message: str) -> None:
    """The API server decodes JSON numbers into int64 or float64; 10**400 fits neither. Before,
    ``float()`` of it raised OverflowError out of the parser (and out of the operator's check)."""
    assert _error({**BASE, section: {key: 10**400}}) == message
    assert parse_spec({**BASE, "stopping": {"targetReward": 2**70}}).stopping.target_reward == float(2**70)  # a float64 still


def test_nan_in_environment_kwargs_is_refused_with_its_path() -> None:
    spec = {"environment": {"id": "Hopper-v5", "kwargs": {"healthy_reward": float("nan"), "x": [1.0, float("inf")]}}}
    lines = _error(spec).splitlines()
    why = "must be finite (JSON, and so the API server, has no NaN or infinity)"
    assert f"spec.environment.kwargs.healthy_reward: {why}, got nan" in lines
    assert f"spec.environment.kwargs.x[1]: {why}, got inf" in lines


def test_a_network_with_too_many_weights_is_refused_naming_its_layers() -> None:
    spec = parse_spec({"environment": {"id": "InvertedPendulum-v5"}, "policy": {"template": "mlp", "hiddenLayers": [4096, 4096]}})
    [error] = check_dimensions(spec, 4, 1)
    assert error.path == "spec.policy.hiddenLayers"
    assert error.reason.startswith(f"a [4, 4096, 4096, 1] network has 16,797,696 weights: at most {MAX_WEIGHTS:,} are supported")
    linear = parse_spec({"environment": {"id": "X-v0"}, "policy": {"template": "linear"}})
    assert [e.path for e in check_dimensions(linear, MAX_OBS_DIM, 1000)] == ["spec.environment.id"]


def test_pairs_times_trainable_parameters_is_bounded_not_the_dense_size() -> None:
    """The ES step holds a perturbation row per pair: a dense [1000, 1000] MLP on Humanoid's 348
    inputs with 1,000 pairs needs ~10 GiB; the chromatic default on the same task and pairs, a few MB."""
    dense = parse_spec({"environment": {"id": "Humanoid-v5"}, "policy": {"template": "mlp", "topology": "dense", "hiddenLayers": [1000, 1000]},
                        "controller": {"type": "none"}, "es": {"perturbations": 1000}})
    [error] = check_dimensions(dense, 348, 17)
    assert error.path == "spec.es.perturbations"
    assert "1,000 pairs of a policy with 1,367,017 trainable parameters need 10.2 GiB" in error.reason
    chromatic = parse_spec({"environment": {"id": "Humanoid-v5"}, "policy": {"template": "mlp", "topology": "partition", "partitions": 17},
                            "es": {"perturbations": 100_000}})
    assert check_dimensions(chromatic, 348, 17) == []


class _Spaces(gymnasium.Env):  # type: ignore[type-arg]
    def __init__(self, obs: Any, act: Any) -> None:
        self.observation_space, self.action_space = obs, act


@pytest.mark.parametrize(("obs", "act", "says"), [
    (gymnasium.spaces.Box(-1, 1, (3,)), gymnasium.spaces.Box(-1, 1, (0,)), "has an action space of 0 numbers"),
    (gymnasium.spaces.Box(-1, 1, (3,)), gymnasium.spaces.Discrete(10**8), f"100,000,000 numbers (Discrete(100000000)): at least 1 and at most {MAX_ACT_DIM:,}"),
    (gymnasium.spaces.Box(-1, 1, (3,)), gymnasium.spaces.MultiBinary(10**7), "has an action space of 10,000,000 numbers"),
    (gymnasium.spaces.Discrete(10**10), gymnasium.spaces.Discrete(2), f"10,000,000,000 numbers once flattened (Discrete(10000000000)): at most {MAX_OBS_DIM:,}"),
])
def test_spaces_too_big_or_empty_are_refused_before_they_are_allocated(obs: Any, act: Any, says: str) -> None:
    """A Discrete(10**10) observation's one-hot space, or 10**8 action scores' bounds, would take
    gigabytes before the observation-size check ran; an empty action divided by zero later."""
    with pytest.raises(SpecError) as info:
        adapt(_Spaces(obs, act), "mine:Env")
    assert str(info.value).startswith("spec.environment.id: 'mine:Env' ") and says in str(info.value)
    assert adapt(_Spaces(gymnasium.spaces.Discrete(16), gymnasium.spaces.Discrete(3)), "mine:Env").action_space.shape == (3,)


def test_the_in_process_trainer_refuses_returns_past_max_abs_reward_as_the_aggregator_does() -> None:
    """``esenas run --in-process`` trained to success where the same job on workers failed with
    RewardOutOfBounds: CartPole returns up to 500 per episode, beyond a maxAbsReward of 5."""
    spec = parse_spec({"environment": {"id": "CartPole-v1", "maxAbsReward": 5},
                       "es": {"perturbations": 2, "exactEvals": 0}, "stopping": {"maxIterations": 1}})
    trainer = Trainer(spec, workers=1)
    try:
        with pytest.raises(RolloutFailed, match=r"^RewardOutOfBounds: spec\.environment\.maxAbsReward: item \d+ of iteration 0 returned "):
            trainer.step()
    finally:
        trainer.close()
    ok = Trainer(parse_spec({"environment": {"id": "CartPole-v1"}, "es": {"perturbations": 2, "exactEvals": 0}}), workers=1)
    try:
        assert np.isfinite(ok.step().reward_mean)
    finally:
        ok.close()
