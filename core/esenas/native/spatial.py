"""Native Ant-v5 and Humanoid-v5: the 3-D locomotion tasks, which observe contact forces.

Both read ``cfrc_ext`` (observation and contact cost), which only ``mj_rnePostConstraint`` fills,
so each step runs it after ``mj_step`` as Gymnasium's MujocoEnv does. Same arithmetic as
gymnasium/envs/mujoco/{ant,humanoid}_v5.py in the same order, including Humanoid's einsum
mass centre and its control cost on ``data.ctrl``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import mujoco
import numpy as np
import numpy.typing as npt

from esenas.native.base import F64, NativeMujocoEnv

_mj_step: Final = mujoco.mj_step
_rne_post: Final = mujoco.mj_rnePostConstraint
_square: Final = np.square
# np.sum(x) is np.add.reduce(x, None) behind a Python wrapper: same loop, same numbers, ~1 us less.
_sum_all: Final = np.add.reduce
_concat: Final = np.concatenate
_clip: Final = np.clip


class Ant(NativeMujocoEnv):
    ENV_ID = "Ant-v5"
    XML = "ant.xml"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "frame_skip": 5, "forward_reward_weight": 1, "ctrl_cost_weight": 0.5, "contact_cost_weight": 5e-4,
        "healthy_reward": 1.0, "main_body": 1, "terminate_when_unhealthy": True, "healthy_z_range": (0.2, 1.0),
        "contact_force_range": (-1.0, 1.0), "reset_noise_scale": 0.1,
        "exclude_current_positions_from_observation": True, "include_cfrc_ext_in_observation": True,
    }

    def configure(self) -> None:
        kw = self.kw
        self.fw, self.cw, self.kcw, self.hw = (
            kw["forward_reward_weight"], kw["ctrl_cost_weight"], kw["contact_cost_weight"], kw["healthy_reward"],
        )
        self.terminate: bool = kw["terminate_when_unhealthy"]
        self.z_lo, self.z_hi = kw["healthy_z_range"]
        self.f_lo, self.f_hi = kw["contact_force_range"]
        self.skip = 2 * int(bool(kw["exclude_current_positions_from_observation"]))
        self.with_forces = bool(kw["include_cfrc_ext_in_observation"])
        self.body = self.data.body(kw["main_body"]).id  # a body's index or name, as data.body() takes
        self.xpos: F64 = self.data.xpos
        self.cfrc_ext: F64 = self.data.cfrc_ext

    def observe(self) -> F64:
        pos, vel = self.qpos[self.skip :], self.qvel
        if self.with_forces:
            return _concat((pos, vel, _clip(self.cfrc_ext, self.f_lo, self.f_hi)[1:].flatten()))
        return _concat((pos, vel))

    reset_state = NativeMujocoEnv.reset_state_normal_velocity

    def step(self, action: npt.NDArray[Any]) -> tuple[F64, float, bool, bool, dict[str, Any]]:
        self.check_action(action)
        x0 = self.xpos[self.body, 0]
        self.ctrl[:] = action
        _mj_step(self.model, self.data, self.frame_skip)
        _rne_post(self.model, self.data)
        # Gymnasium divides the (x, y) displacement by dt as a vector; x's element is this number.
        x_velocity = (self.xpos[self.body, 0] - x0) / self.dt
        state = _concat((self.qpos, self.qvel))
        healthy = bool(np.isfinite(state).all() and self.z_lo <= state[2] <= self.z_hi)
        forces = _clip(self.cfrc_ext, self.f_lo, self.f_hi)
        rewards = x_velocity * self.fw + healthy * self.hw
        costs = self.cw * _sum_all(_square(action), None) + self.kcw * _sum_all(_square(forces), None)
        pos = self.qpos[self.skip :]
        obs = _concat((pos, self.qvel, forces[1:].flatten())) if self.with_forces else _concat((pos, self.qvel))
        self.elapsed += 1
        return obs, rewards - costs, (not healthy) and self.terminate, self.elapsed >= self.max_episode_steps, {}


class Humanoid(NativeMujocoEnv):
    ENV_ID = "Humanoid-v5"
    XML = "humanoid.xml"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "frame_skip": 5, "forward_reward_weight": 1.25, "ctrl_cost_weight": 0.1, "contact_cost_weight": 5e-7,
        "contact_cost_range": (-np.inf, 10.0), "healthy_reward": 5.0, "terminate_when_unhealthy": True,
        "healthy_z_range": (1.0, 2.0), "reset_noise_scale": 1e-2, "exclude_current_positions_from_observation": True,
        "include_cinert_in_observation": True, "include_cvel_in_observation": True,
        "include_qfrc_actuator_in_observation": True, "include_cfrc_ext_in_observation": True,
    }

    def configure(self) -> None:
        kw, d = self.kw, self.data
        self.fw, self.cw, self.kcw, self.hw = (
            kw["forward_reward_weight"], kw["ctrl_cost_weight"], kw["contact_cost_weight"], kw["healthy_reward"],
        )
        self.c_lo, self.c_hi = kw["contact_cost_range"]
        self.terminate: bool = kw["terminate_when_unhealthy"]
        self.z_lo, self.z_hi = kw["healthy_z_range"]
        self.skip = 2 * int(bool(kw["exclude_current_positions_from_observation"]))
        # Gymnasium tests these with `is True`: only the boolean True includes a part.
        self.parts: list[tuple[F64, int]] = [
            (arr, start)
            for arr, key, start in (
                (d.cinert, "include_cinert_in_observation", 1),
                (d.cvel, "include_cvel_in_observation", 1),
                (d.qfrc_actuator, "include_qfrc_actuator_in_observation", 6),
                (d.cfrc_ext, "include_cfrc_ext_in_observation", 1),
            )
            if kw[key] is True
        ]
        self.mass: F64 = self.model.body_mass
        self.total_mass = self.mass.sum()
        self.xipos: F64 = d.xipos
        self.cfrc_ext: F64 = d.cfrc_ext

    def mass_center_x(self) -> Any:
        return (np.einsum("b,bj->j", self.mass, self.xipos) / self.total_mass)[0]

    def observe(self) -> F64:
        return _concat((self.qpos[self.skip :], self.qvel, *(arr[start:].flatten() for arr, start in self.parts)))

    def step(self, action: npt.NDArray[Any]) -> tuple[F64, float, bool, bool, dict[str, Any]]:
        self.check_action(action)
        x0 = self.mass_center_x()
        self.ctrl[:] = action
        _mj_step(self.model, self.data, self.frame_skip)
        _rne_post(self.model, self.data)
        x_velocity = (self.mass_center_x() - x0) / self.dt
        healthy = bool(self.z_lo < self.qpos[2] < self.z_hi)
        contact_cost = _clip(self.kcw * _sum_all(_square(self.cfrc_ext), None), self.c_lo, self.c_hi)
        rewards = self.fw * x_velocity + healthy * self.hw
        reward = rewards - (self.cw * _sum_all(_square(self.ctrl), None) + contact_cost)
        self.elapsed += 1
        return self.observe(), reward, (not healthy) and self.terminate, self.elapsed >= self.max_episode_steps, {}
