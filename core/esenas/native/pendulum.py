"""Native InvertedPendulum-v5 and InvertedDoublePendulum-v5.

The same arithmetic as gymnasium/envs/mujoco/inverted_*pendulum_v5.py, in the same order.
Neither reads ``cfrc_ext``, so neither calls ``mj_rnePostConstraint`` (``qfrc_constraint``, which
the double pendulum observes, comes from ``mj_step`` itself).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import mujoco
import numpy as np
import numpy.typing as npt

from esenas.native.base import F64, NativeMujocoEnv

_mj_step: Final = mujoco.mj_step
_concat: Final = np.concatenate
_clip: Final = np.clip


class InvertedPendulum(NativeMujocoEnv):
    ENV_ID = "InvertedPendulum-v5"
    XML = "inverted_pendulum.xml"
    DEFAULTS: ClassVar[dict[str, Any]] = {"frame_skip": 2, "reset_noise_scale": 0.01}

    def observe(self) -> F64:
        return _concat([self.qpos, self.qvel])

    def step(self, action: npt.NDArray[Any]) -> tuple[F64, float, bool, bool, dict[str, Any]]:
        self.check_action(action)
        self.ctrl[:] = action
        _mj_step(self.model, self.data, self.frame_skip)
        obs = _concat([self.qpos, self.qvel])
        terminated = bool(not np.isfinite(obs).all() or np.abs(obs[1]) > 0.2)
        self.elapsed += 1
        return obs, int(not terminated), terminated, self.elapsed >= self.max_episode_steps, {}


class InvertedDoublePendulum(NativeMujocoEnv):
    ENV_ID = "InvertedDoublePendulum-v5"
    XML = "inverted_double_pendulum.xml"
    DEFAULTS: ClassVar[dict[str, Any]] = {"frame_skip": 5, "healthy_reward": 10.0, "reset_noise_scale": 0.1}

    def configure(self) -> None:
        self.hw: float = self.kw["healthy_reward"]
        self.site_xpos: F64 = self.data.site_xpos
        self.qfrc_constraint: F64 = self.data.qfrc_constraint

    def observe(self) -> F64:
        qpos, qvel = self.qpos, self.qvel
        return _concat(
            [qpos[:1], np.sin(qpos[1:]), np.cos(qpos[1:]), _clip(qvel, -10, 10), _clip(self.qfrc_constraint, -10, 10)[:1]]
        )

    def reset_state(self, rng: np.random.Generator) -> tuple[F64, F64]:
        qpos = self.init_qpos + rng.uniform(low=-self.noise, high=self.noise, size=self.model.nq)
        qvel = self.init_qvel + rng.standard_normal(self.model.nv) * self.noise
        return qpos, qvel

    def step(self, action: npt.NDArray[Any]) -> tuple[F64, float, bool, bool, dict[str, Any]]:
        self.check_action(action)
        self.ctrl[:] = action
        _mj_step(self.model, self.data, self.frame_skip)
        x, _, y = self.site_xpos[0]
        obs = self.observe()
        terminated = bool(y <= 1)
        v1, v2 = self.qvel[1:3]
        dist_penalty = 0.01 * x**2 + (y - 2) ** 2
        vel_penalty = 1e-3 * v1**2 + 5e-3 * v2**2
        reward = self.hw * int(not terminated) - dist_penalty - vel_penalty
        self.elapsed += 1
        return obs, reward, terminated, self.elapsed >= self.max_episode_steps, {}
