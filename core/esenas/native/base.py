"""The common part of the native steppers: load a Gymnasium MuJoCo task's model, seed, reset, time limit.

It mirrors ``gymnasium.envs.mujoco.MujocoEnv`` (Gymnasium 1.x) behind ``gymnasium.make``'s
wrappers (PassiveEnvChecker, OrderEnforcing and TimeLimit, which change no numbers), without the
Python around it: the model is the same XML from Gymnasium's assets, ``reset(seed=...)`` draws
from ``seeding.np_random(seed)`` exactly as ``gymnasium.Env.reset`` does, and ``step`` calls
``mj_step`` once with ``nstep=frame_skip``. Gymnasium also runs ``mj_rnePostConstraint`` after
every step; it only fills ``cacc``/``cfrc_int``/``cfrc_ext``, which no later step reads, so a task
calls it only when its observation or reward uses them (Ant, Humanoid). The exactness tests
(tests/unit/esenas/test_native_*.py) hold every task to Gymnasium's numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

import mujoco
import numpy as np
import numpy.typing as npt
from gymnasium.envs.mujoco.mujoco_env import expand_model_path
from gymnasium.spaces import Box
from gymnasium.utils import seeding

F64 = npt.NDArray[np.float64]
_ndarray: Final = np.ndarray
_f64: Final = np.dtype(np.float64)
_square: Final = np.square
# np.sum(x) is np.add.reduce(x, None) behind a Python wrapper: same loop, same numbers, ~1 us less.
_sum_all: Final = np.add.reduce
#: numpy sums fewer than this many float64s left to right from 0.0 (its pairwise summation, with
#: 8 partial sums, starts at 8 elements): tests/unit/esenas/test_native_exactness.py holds it.
PLAIN_SUM_BELOW: Final = 8


class NativeSpec:
    """What ``env.spec`` gives the callers that read it: the id and the time limit."""

    def __init__(self, env_id: str, max_episode_steps: int) -> None:
        self.id = env_id
        self.max_episode_steps = max_episode_steps


class NativeMujocoEnv:
    """One Gymnasium v5 MuJoCo task, stepped directly. Subclasses set XML, DEFAULTS, and
    implement ``configure``, ``observe``, ``reset_state`` and ``step``."""

    ENV_ID: ClassVar[str]
    XML: ClassVar[str]
    #: The v5 keyword arguments this stepper accepts, with Gymnasium v5's defaults. Any other
    #: keyword (xml_file, rendering options, ...) makes ``esenas.native.supports`` say no.
    DEFAULTS: ClassVar[Mapping[str, Any]]
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, kwargs: Mapping[str, Any], max_episode_steps: int) -> None:
        unknown = set(kwargs) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"{self.ENV_ID}: the native stepper does not take {sorted(unknown)}")
        self.kw: dict[str, Any] = {**self.DEFAULTS, **kwargs}
        self.model = mujoco.MjModel.from_xml_path(expand_model_path(self.XML))
        self.data = mujoco.MjData(self.model)
        self.init_qpos: F64 = self.data.qpos.ravel().copy()
        self.init_qvel: F64 = self.data.qvel.ravel().copy()
        self.frame_skip = int(self.kw["frame_skip"])
        # Gymnasium's dt property, a Python float: timestep * frame_skip
        self.dt: float = self.model.opt.timestep * self.frame_skip
        self.noise: float = self.kw["reset_noise_scale"]
        low, high = self.model.actuator_ctrlrange.copy().astype(np.float32).T
        self.action_space = Box(low=low, high=high, dtype=np.float32)
        # Views into MjData stay valid for its lifetime: bind them once, not per step.
        self.qpos: F64 = self.data.qpos
        self.qvel: F64 = self.data.qvel
        self.ctrl: F64 = self.data.ctrl
        self.max_episode_steps = max_episode_steps
        self.act_shape: tuple[int] = (self.model.nu,)
        self.plain_sum = self.model.nu < PLAIN_SUM_BELOW
        self.spec = NativeSpec(self.ENV_ID, max_episode_steps)
        self.elapsed = 0
        self.np_random: np.random.Generator | None = None
        self.configure()
        obs = self.observe()
        self.observation_space = Box(low=-np.inf, high=np.inf, shape=obs.shape, dtype=np.float64)

    @property
    def unwrapped(self) -> NativeMujocoEnv:
        return self

    # ------------------------------------------------------------------ per task

    def configure(self) -> None:
        """Read ``self.kw`` into attributes the hot path uses."""

    def observe(self) -> F64:
        raise NotImplementedError

    def reset_state(self, rng: np.random.Generator) -> tuple[F64, F64]:
        """(qpos, qvel) to start from, drawing noise in the task's order (most: uniform, uniform)."""
        lo, hi = -self.noise, self.noise
        qpos = self.init_qpos + rng.uniform(low=lo, high=hi, size=self.model.nq)
        qvel = self.init_qvel + rng.uniform(low=lo, high=hi, size=self.model.nv)
        return qpos, qvel

    def reset_state_normal_velocity(self, rng: np.random.Generator) -> tuple[F64, F64]:
        """The other order (HalfCheetah, Ant, Humanoid): uniform positions, normal velocities."""
        qpos = self.init_qpos + rng.uniform(low=-self.noise, high=self.noise, size=self.model.nq)
        qvel = self.init_qvel + self.noise * rng.standard_normal(self.model.nv)
        return qpos, qvel

    def step(self, action: npt.NDArray[Any]) -> tuple[F64, float, bool, bool, dict[str, Any]]:
        raise NotImplementedError

    # ------------------------------------------------------------------ shared

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[F64, dict[str, Any]]:
        """gymnasium.Env.reset's seeding, MujocoEnv.reset's mj_resetData, the task's noise, set_state."""
        if seed is not None or self.np_random is None:
            self.np_random, _ = seeding.np_random(seed)
        mujoco.mj_resetData(self.model, self.data)
        qpos, qvel = self.reset_state(self.np_random)
        self.qpos[:] = qpos
        self.qvel[:] = qvel
        mujoco.mj_forward(self.model, self.data)
        self.elapsed = 0
        return self.observe(), {}

    def check_action(self, action: npt.NDArray[Any]) -> None:
        """MujocoEnv.do_simulation's shape check (an array's own shape first: np.shape costs ~4x more)."""
        if action.__class__ is _ndarray and action.shape == self.act_shape:
            return
        if np.shape(action) != self.act_shape:
            raise ValueError(f"Action dimension mismatch. Expected {self.act_shape}, found {np.shape(action)}")

    def square_sum(self, action: npt.NDArray[Any]) -> Any:
        """``np.sum(np.square(action))``, Gymnasium's control cost, with its numbers: a float64
        action shorter than PLAIN_SUM_BELOW is summed in Python floats in numpy's order (x*x is
        np.square's product), ~5x faster than the two ufunc calls on these few elements; any
        other action (float32 keeps float32 sums, as in Gymnasium) goes to numpy."""
        if self.plain_sum and action.__class__ is _ndarray and action.dtype == _f64:
            total = 0.0
            for x in action.tolist():
                total += x * x
            return total
        return _sum_all(_square(action), None)

    def close(self) -> None:
        """Nothing to release: no renderer."""
