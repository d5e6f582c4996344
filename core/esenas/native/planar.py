"""Native HalfCheetah-v5, Hopper-v5, Walker2d-v5 and Swimmer-v5: the planar locomotion tasks.

Each ``step`` is the v5 task's ``step`` (gymnasium/envs/mujoco/*_v5.py) with the same arithmetic
in the same order, so observations and rewards match Gymnasium's bit for bit: forward reward
``w * ((x_after - x_before) / dt)``, control cost ``w * np.sum(np.square(action))`` on the action
as given (float32 actions keep float32 sums, as in Gymnasium), and the health checks of v5.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import mujoco
import numpy as np
import numpy.typing as npt

from esenas.native.base import F64, NativeMujocoEnv

_mj_step: Final = mujoco.mj_step
_concat: Final = np.concatenate
_max: Final = np.maximum
_min: Final = np.minimum


class _Forward(NativeMujocoEnv):
    """Shared by the four: forward reward along x, control cost, optional positions in obs."""

    def configure(self) -> None:
        self.fw: float = self.kw["forward_reward_weight"]
        self.cw: float = self.kw["ctrl_cost_weight"]
        # exclude_current_positions_from_observation drops qpos[0] (qpos[0:2] for Swimmer)
        self.skip = self.SKIPPED * int(bool(self.kw["exclude_current_positions_from_observation"]))

    SKIPPED: ClassVar[int] = 1

    def observe(self) -> F64:
        return _concat((self.qpos[self.skip :], self.qvel))

    def step(self, action: npt.NDArray[Any]) -> tuple[F64, float, bool, bool, dict[str, Any]]:
        """HalfCheetah's and Swimmer's step (Hopper and Walker2d add health checks)."""
        self.check_action(action)
        qpos = self.qpos
        x0 = qpos[0]
        self.ctrl[:] = action
        _mj_step(self.model, self.data, self.frame_skip)
        # Swimmer's Gymnasium divides the (x, y) displacement by dt as a vector; x's element is this number.
        reward = self.fw * ((qpos[0] - x0) / self.dt) - self.cw * self.square_sum(action)
        self.elapsed += 1
        return _concat((qpos[self.skip :], self.qvel)), reward, False, self.elapsed >= self.max_episode_steps, {}


class HalfCheetah(_Forward):
    ENV_ID = "HalfCheetah-v5"
    XML = "half_cheetah.xml"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "frame_skip": 5, "forward_reward_weight": 1.0, "ctrl_cost_weight": 0.1,
        "reset_noise_scale": 0.1, "exclude_current_positions_from_observation": True,
    }

    reset_state = NativeMujocoEnv.reset_state_normal_velocity


class Swimmer(_Forward):
    ENV_ID = "Swimmer-v5"
    XML = "swimmer.xml"
    SKIPPED = 2
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "frame_skip": 4, "forward_reward_weight": 1.0, "ctrl_cost_weight": 1e-4,
        "reset_noise_scale": 0.1, "exclude_current_positions_from_observation": True,
    }


class _Hopping(_Forward):
    """Hopper and Walker2d: a healthy bonus, termination when unhealthy, velocities clipped to +-10."""

    def configure(self) -> None:
        super().configure()
        self.hw: float = self.kw["healthy_reward"]
        self.terminate: bool = self.kw["terminate_when_unhealthy"]
        self.z_lo, self.z_hi = self.kw["healthy_z_range"]
        self.a_lo, self.a_hi = self.kw["healthy_angle_range"]

    def observe(self) -> F64:
        # minimum(maximum()) is np.clip(qvel, -10, 10) (NaN stays NaN) without its Python wrapper
        return _concat((self.qpos[self.skip :], _min(_max(self.qvel, -10), 10)))

    def healthy(self) -> bool:
        raise NotImplementedError

    def step(self, action: npt.NDArray[Any]) -> tuple[F64, float, bool, bool, dict[str, Any]]:
        self.check_action(action)
        qpos = self.qpos
        x0 = qpos[0]
        self.ctrl[:] = action
        _mj_step(self.model, self.data, self.frame_skip)
        healthy = self.healthy()
        reward = (self.fw * ((qpos[0] - x0) / self.dt) + healthy * self.hw) - self.cw * self.square_sum(action)
        self.elapsed += 1
        obs = _concat((qpos[self.skip :], _min(_max(self.qvel, -10), 10)))
        return obs, reward, (not healthy) and self.terminate, self.elapsed >= self.max_episode_steps, {}


class Hopper(_Hopping):
    ENV_ID = "Hopper-v5"
    XML = "hopper.xml"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "frame_skip": 4, "forward_reward_weight": 1.0, "ctrl_cost_weight": 1e-3, "healthy_reward": 1.0,
        "terminate_when_unhealthy": True, "healthy_state_range": (-100.0, 100.0),
        "healthy_z_range": (0.7, float("inf")), "healthy_angle_range": (-0.2, 0.2),
        "reset_noise_scale": 5e-3, "exclude_current_positions_from_observation": True,
    }

    def configure(self) -> None:
        super().configure()
        self.s_lo, self.s_hi = self.kw["healthy_state_range"]

    def healthy(self) -> bool:
        z, angle = self.qpos[1:3]
        state = _concat((self.qpos, self.qvel))[2:]
        ok_state = np.all(np.logical_and(self.s_lo < state, state < self.s_hi))
        return bool(ok_state and self.z_lo < z < self.z_hi and self.a_lo < angle < self.a_hi)


class Walker2d(_Hopping):
    ENV_ID = "Walker2d-v5"
    XML = "walker2d_v5.xml"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "frame_skip": 4, "forward_reward_weight": 1.0, "ctrl_cost_weight": 1e-3, "healthy_reward": 1.0,
        "terminate_when_unhealthy": True, "healthy_z_range": (0.8, 2.0), "healthy_angle_range": (-1.0, 1.0),
        "reset_noise_scale": 5e-3, "exclude_current_positions_from_observation": True,
    }

    def healthy(self) -> bool:
        z, angle = self.qpos[1:3]
        return bool(self.z_lo < z < self.z_hi and self.a_lo < angle < self.a_hi)
