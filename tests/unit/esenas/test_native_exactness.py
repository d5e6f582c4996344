"""The native steppers give Gymnasium v5's numbers exactly: same seeds, same actions, both paths.

Every task runs a few short episodes with random actions (float32 and float64, beyond the
control range so MuJoCo's clamping and the raw-action control cost both matter) and with a
closed-loop policy-like controller, through ``gymnasium.make`` and ``esenas.native``. The
observations, rewards, terminations, truncations and episode lengths must be identical, bit for
bit: the native path does the same float arithmetic in the same order (no tolerance anywhere).
Episodes are short (``max_episode_steps`` 40) so the whole file takes a few seconds, and each
terminating task must terminate in at least one episode, so the health checks are compared too.
A new Gymnasium that changes a task's model, defaults, reward, observation or termination fails
here; so does a change to the v5 keyword defaults (compared with the constructors' signatures).
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium
import numpy as np
import pytest
from esenas import native

STEPS = 40
#: Tasks whose random-action episodes must end by termination at least once.
TERMINATING = {"Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "InvertedPendulum-v5", "InvertedDoublePendulum-v5"}
#: Non-default keyword arguments per task: each accepted keyword must mean what it means in Gymnasium.
KWARGS: dict[str, dict[str, Any]] = {
    "HalfCheetah-v5": {"frame_skip": 3, "ctrl_cost_weight": 0.5, "forward_reward_weight": 2.0,
                       "reset_noise_scale": 0.3, "exclude_current_positions_from_observation": False},
    "Hopper-v5": {"terminate_when_unhealthy": False, "healthy_z_range": [0.9, 5.0], "healthy_angle_range": [-0.1, 0.1],
                  "healthy_state_range": [-50.0, 50.0], "healthy_reward": 2.0, "exclude_current_positions_from_observation": False},
    "Walker2d-v5": {"healthy_z_range": [0.9, 1.9], "healthy_angle_range": [-0.5, 0.5], "ctrl_cost_weight": 0.1,
                    "reset_noise_scale": 0.05},
    "Swimmer-v5": {"exclude_current_positions_from_observation": False, "ctrl_cost_weight": 0.01, "frame_skip": 2},
    "Ant-v5": {"main_body": "torso", "include_cfrc_ext_in_observation": False, "contact_force_range": [-0.5, 0.5],
               "healthy_z_range": [0.3, 1.0], "contact_cost_weight": 0.01, "exclude_current_positions_from_observation": False},
    "Humanoid-v5": {"include_cinert_in_observation": False, "include_qfrc_actuator_in_observation": False,
                    "contact_cost_range": [0.0, 1e-3], "healthy_z_range": [1.1, 2.0], "terminate_when_unhealthy": True},
    "InvertedPendulum-v5": {"reset_noise_scale": 0.1, "frame_skip": 3},
    "InvertedDoublePendulum-v5": {"healthy_reward": 5.0, "reset_noise_scale": 0.2},
}


def _episodes(env_id: str, kwargs: dict[str, Any], mode: str, episodes: int = 3) -> tuple[int, int]:
    """Run both paths side by side; assert every number is equal. (steps, terminations) seen."""
    gym_env = gymnasium.make(env_id, max_episode_steps=STEPS, **kwargs)
    nat = native.make(env_id, kwargs, STEPS)
    assert nat.observation_space.shape == gym_env.observation_space.shape
    assert np.array_equal(nat.action_space.low, gym_env.action_space.low)
    assert np.array_equal(nat.action_space.high, gym_env.action_space.high)
    rng = np.random.default_rng(sum(map(ord, env_id + mode)))
    low, high = gym_env.action_space.low.astype(np.float64), gym_env.action_space.high.astype(np.float64)
    obs_dim, act_dim = nat.observation_space.shape[0], low.size
    weights = rng.normal(0.0, 1.0 / np.sqrt(obs_dim), (act_dim, obs_dim))
    total_steps = terminations = 0
    for ep in range(episodes):
        seed = 1000 * ep + 7
        obs_g, _ = gym_env.reset(seed=seed)
        obs_n, _ = nat.reset(seed=seed)
        assert np.array_equal(obs_g, obs_n), f"{env_id} reset(seed={seed}): start states differ"
        for t in range(STEPS + 1):
            if mode == "policy":  # closed loop, float64, as Policy.act then the rollout's clip
                action = np.clip(np.tanh(weights @ obs_g) * 1.2 * high, low, high)
            else:
                action = rng.uniform(1.5 * low, 1.5 * high)
                if mode == "random32":
                    action = action.astype(np.float32)
            obs_g, rew_g, term_g, trunc_g, _ = gym_env.step(action)
            obs_n, rew_n, term_n, trunc_n, _ = nat.step(action)
            where = f"{env_id} {kwargs} {mode} episode {ep} step {t}"
            assert obs_g.dtype == obs_n.dtype == np.float64, where
            assert np.array_equal(obs_g, obs_n), f"{where}: observations differ by {np.abs(obs_g - obs_n).max()}"
            assert rew_g == rew_n, f"{where}: reward {rew_g!r} != {rew_n!r}"
            assert (bool(term_g), bool(trunc_g)) == (bool(term_n), bool(trunc_n)), where
            if term_g or trunc_g:
                break
        total_steps += t + 1
        terminations += bool(term_g)
    gym_env.close()
    return total_steps, terminations


@pytest.mark.parametrize("env_id", sorted(native.TASKS))
@pytest.mark.parametrize("mode", ["random", "random32", "policy"])
def test_default_kwargs_match_gymnasium(env_id: str, mode: str) -> None:
    steps, terminations = _episodes(env_id, {}, mode)
    assert steps > 0
    if mode == "random" and env_id in TERMINATING:
        assert terminations > 0, f"{env_id}: no episode terminated, so the health check went untested"
    if env_id not in TERMINATING:
        assert (steps, terminations) == (3 * STEPS, 0), "never terminates: each episode is truncated at the limit"


@pytest.mark.parametrize("env_id", sorted(native.TASKS))
def test_non_default_kwargs_match_gymnasium(env_id: str) -> None:
    _episodes(env_id, KWARGS[env_id], "random", episodes=2)
    _episodes(env_id, KWARGS[env_id], "policy", episodes=2)


@pytest.mark.parametrize("env_id", sorted(native.TASKS))
def test_defaults_and_model_are_gymnasium_v5s(env_id: str) -> None:
    """The keyword defaults the native stepper assumes are the v5 constructor's, and it loads the same XML."""
    gym_env = gymnasium.make(env_id)
    cls = native.task_class(env_id)
    assert cls is not None
    params = inspect.signature(type(gym_env.unwrapped).__init__).parameters
    for key, value in cls.DEFAULTS.items():
        assert params[key].default == value, f"{env_id}: Gymnasium's default {key}={params[key].default!r}, native {value!r}"
    skipped = {"self", "kwargs", "xml_file", "default_camera_config"}
    assert set(params) - skipped == set(cls.DEFAULTS), "a v5 keyword the native stepper neither takes nor refuses"
    assert gym_env.unwrapped.fullpath.endswith("/" + cls.XML)
    gym_env.close()


def test_the_plain_control_cost_sum_is_numpys() -> None:
    """NativeMujocoEnv.square_sum sums short float64 actions in Python floats, relying on numpy
    summing fewer than PLAIN_SUM_BELOW numbers left to right from 0.0. A numpy that changes its
    order fails here (and in the exactness tests above), not silently."""
    from esenas.native.base import PLAIN_SUM_BELOW

    env = native.make("HalfCheetah-v5", {}, 10)
    rng = np.random.default_rng(11)
    for n in range(1, PLAIN_SUM_BELOW):
        env.plain_sum = True
        for _ in range(2000):
            a = rng.normal(size=n) * rng.uniform(0.01, 100.0)
            fast = env.square_sum(a)
            assert type(fast) is float and fast == np.sum(np.square(a)), (n, a)
    a32 = rng.normal(size=6).astype(np.float32)
    slow = env.square_sum(a32)  # float32 keeps numpy's float32 sum, as Gymnasium computes it
    assert slow.dtype == np.float32 and slow == np.sum(np.square(a32))
    env.close()
