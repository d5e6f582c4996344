"""Every Gymnasium space family a vector policy can drive: Discrete, MultiDiscrete and MultiBinary
actions become scores, non-flat observations are flattened, and the rest is refused by field."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
from esenas.rollout import env_dims, make_env, rollout
from esenas.spaces import adapt
from esenas.spec import EnvironmentSpec, SpecError
from gymnasium import spaces


class Recorder(gymnasium.Env):  # type: ignore[type-arg]
    """Records the action each step gets; a Box(3,) observation of zeros, 2 steps per episode."""

    def __init__(self, action_space: Any, observation_space: Any = None) -> None:
        self.action_space = action_space
        self.observation_space = observation_space or spaces.Box(-1, 1, (3,))
        self.got: list[Any] = []

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        assert self.action_space.contains(action), action
        self.got.append(action)
        return self.observation_space.sample(), 1.0, len(self.got) % 2 == 0, False, {}


def _driven(space: Any, scores: list[float], low: float = -np.inf, high: float = np.inf) -> Any:
    inner = Recorder(space)
    env = adapt(inner, "test:Recorder")
    assert env.action_space == spaces.Box(low, high, (len(scores),), np.float64)
    env.reset(seed=0)
    env.step(np.asarray(scores))
    return inner.got[-1]


def test_discrete_actions_are_the_argmax_of_one_score_each() -> None:
    assert _driven(spaces.Discrete(3), [0.1, 2.0, -5.0]) == 1
    assert _driven(spaces.Discrete(3, start=-1), [0.1, 2.0, -5.0]) == 0  # the space's own start


def test_multidiscrete_is_an_argmax_per_block_and_multibinary_a_sign_per_bit() -> None:
    got = _driven(spaces.MultiDiscrete([2, 3]), [0.0, 1.0, 5.0, -1.0, 0.0])
    assert got.tolist() == [1, 0]
    assert _driven(spaces.MultiBinary(3), [0.5, -0.5, 2.0]).tolist() == [1, 0, 1]


def test_a_multi_dimensional_box_is_reshaped_and_a_flat_one_untouched() -> None:
    assert _driven(spaces.Box(-1, 1, (2, 2)), [0.1, 0.2, 0.3, 0.4], -1.0, 1.0).shape == (2, 2)  # bounds kept
    flat = Recorder(spaces.Box(-1, 1, (2,)))
    assert adapt(flat, "test:Recorder") is flat  # nothing to adapt: the same object


def test_discrete_and_tuple_observations_become_one_hot_vectors() -> None:
    env = adapt(Recorder(spaces.Box(-1, 1, (1,)), spaces.Tuple((spaces.Discrete(3), spaces.Discrete(2)))), "test:Recorder")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,) and obs.sum() == 2  # one hot per part
    assert env_dims(env) == (5, 1)


@pytest.mark.parametrize("space", [spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2))), spaces.Box(0, 3, (2,), np.int64)])
def test_an_action_space_no_policy_can_emit_is_refused_by_field(space: Any) -> None:
    with pytest.raises(SpecError) as info:
        adapt(Recorder(space), "test:Recorder")
    (err,) = info.value.errors
    assert err.path == "spec.environment.id"
    assert err.reason.startswith("'test:Recorder' has an action space a policy cannot emit (")
    assert err.reason.endswith("supported are Box, Discrete, MultiDiscrete and MultiBinary actions")


@pytest.mark.parametrize(("env_id", "dims"), [("CartPole-v1", (4, 2)), ("Acrobot-v1", (6, 3)), ("FrozenLake-v1", (16, 4)), ("Blackjack-v1", (45, 2))])
def test_gymnasium_discrete_tasks_build_and_roll_out(env_id: str, dims: tuple[int, int]) -> None:
    from esenas.network import Architecture
    from esenas.policies import Policy
    from esenas.spec import PolicySpec

    assert env_dims(EnvironmentSpec(env_id)) == dims
    arch = Architecture(PolicySpec(template="linear", topology="dense"), *dims)
    rng = np.random.default_rng(0)
    policy = Policy(arch, arch.default_topology(), rng.normal(size=arch.num_params))
    env = make_env(EnvironmentSpec(env_id, max_episode_steps=50))
    total, steps, _ = rollout(env, policy, seed=1)
    assert 1 <= steps <= 50 and np.isfinite(total)
    env.close()


def test_where_the_sizes_are_learned_a_tuple_action_space_is_a_bad_spec(env_module: Any) -> None:
    tuple_actions = env_module("esenas_test_tuple_env", "spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))")
    with pytest.raises(SpecError) as info:
        env_dims(EnvironmentSpec(tuple_actions))
    assert [e.path for e in info.value.errors] == ["spec.environment.id"]
    assert "Tuple(Discrete(2), Discrete(2))" in info.value.errors[0].reason


def test_the_decoding_is_told_for_scores_and_nothing_is_clipped() -> None:
    from esenas.network import Architecture
    from esenas.policies import Policy
    from esenas.rollout import action_bounds
    from esenas.spaces import action_decoding
    from esenas.spec import PolicySpec

    cartpole = make_env(EnvironmentSpec("CartPole-v1"))
    assert action_decoding(cartpole) == "the argmax of the 2 scores (Discrete(2))"
    mlp = Architecture(PolicySpec(template="mlp", hidden_layers=(4,), topology="dense"), 4, 2)
    assert action_bounds(cartpole, Policy(mlp, mlp.default_topology(), np.zeros(mlp.num_params))) is None
    pendulum = make_env(EnvironmentSpec("Pendulum-v1"))
    assert action_decoding(pendulum) is None  # a Box: the output is the action
    cartpole.close()
    pendulum.close()
