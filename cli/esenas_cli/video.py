"""Episodes of a policy rendered to mp4 with MuJoCo's offscreen renderer (issue 15, item 6).

Headless machines render with Mesa: EGL (``libegl-mesa0``, surfaceless, no X server) or OSMesa
(``libosmesa6``), both Debian packages that ``scripts/fetch-render.sh`` installs. MuJoCo reads
``MUJOCO_GL`` once, when it creates its first context, so the backend is chosen before anything
renders: the user's ``MUJOCO_GL`` when set, else EGL when its library is there, else OSMesa.
The frames come from Gymnasium's ``render_mode="rgb_array"``; imageio-ffmpeg's static ffmpeg
binary (a PyPI wheel, no system ffmpeg) encodes them as H.264.

A video holds one frame per state the task passes through: the reset state, then one per step.
"""

from __future__ import annotations

import ctypes.util
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from esenas.envload import EnvironmentUnavailable, one_line
from esenas.policies import Policy
from esenas.spec import EnvironmentSpec

BACKENDS: Final = ("egl", "osmesa", "glfw")
#: Where each backend's library lives; ctypes finds them without loading them.
LIBRARIES: Final = {"egl": "EGL", "osmesa": "OSMesa"}
INSTALL_HINT: Final = "scripts/fetch-render.sh installs Mesa's EGL and OSMesa (Debian: libegl-mesa0, libosmesa6)"
#: Width and height divide by 8: H.264 wants even sizes, and imageio resizes to its macro block.
MACRO_BLOCK: Final = 8
QUALITIES: Final = ("full", "fast")
#: Frame rate of a task whose metadata gives none.
DEFAULT_FPS: Final = 30


class RenderUnavailable(Exception):
    """This machine cannot render or encode the video; the message is one line saying why."""


@dataclass(frozen=True)
class Rendered:
    """What was written: frames in all, frames per second, and each episode's steps and reward."""

    path: Path
    frames: int
    fps: float
    steps: tuple[int, ...]
    rewards: tuple[float, ...]
    backend: str  #: MUJOCO_GL's value for a MuJoCo task; "" for a task that draws itself

    @property
    def drawn_with(self) -> str:
        return drawn_with(self.backend)

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def drawn_with(backend: str) -> str:
    """How the frames were drawn, for the lines that report a video (``backend``: Rendered's)."""
    return f"MUJOCO_GL={backend}" if backend else "the task's own renderer"


def select_backend() -> str:
    """The ``MUJOCO_GL`` backend to render with, set in the environment; RenderUnavailable if none."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        if chosen not in BACKENDS:
            raise RenderUnavailable(f"MUJOCO_GL={chosen} is not one of {', '.join(BACKENDS)}")
        return chosen
    for name, lib in LIBRARIES.items():
        if ctypes.util.find_library(lib):
            os.environ["MUJOCO_GL"] = name
            os.environ.setdefault("PYOPENGL_PLATFORM", name)  # PyOpenGL reads it at its first import
            return name
    raise RenderUnavailable(f"no offscreen OpenGL library (EGL or OSMesa) on this machine; {INSTALL_HINT}")


def _writer(path: Path, fps: float) -> Any:
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401 - imageio's ffmpeg plugin needs it; fail here, clearly
    except ImportError as exc:
        raise RenderUnavailable(f"writing mp4 needs imageio-ffmpeg ({one_line(exc)}): pip install esenas-cli") from exc
    return imageio.get_writer(str(path), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                              pixelformat="yuv420p", macro_block_size=MACRO_BLOCK, ffmpeg_log_level="error")


def _render_env(env_spec: EnvironmentSpec, width: int, height: int) -> Any:
    """The task as Gymnasium builds it, drawing rgb_array frames (never the native stepper: it draws nothing).

    MuJoCo tasks take the frame size; other tasks (classic control, a user's class) may refuse
    ``width``/``height`` and draw at their own size, so they get a second try without them.
    """
    from esenas.envload import make_env

    kwargs = {**dict(env_spec.kwargs), "render_mode": "rgb_array"}
    try:
        return make_env(dataclasses.replace(env_spec, kwargs={**kwargs, "width": width, "height": height}))
    except EnvironmentUnavailable:
        return make_env(dataclasses.replace(env_spec, kwargs=kwargs))


def render(policy: Policy, env_spec: EnvironmentSpec, path: Path, *, episodes: int = 1, seed: int = 0,
           max_seconds: float | None = None, size: tuple[int, int] = (480, 360), quality: str = "full") -> Rendered:
    """Render ``episodes`` episodes (seeds ``seed``, ``seed + 1``, ...) of ``policy`` to ``path``.

    ``max_seconds`` cuts the video short (the run folder's clip), at the task's frame rate.
    ``quality="fast"`` draws no shadows, reflections or skybox: with Mesa's software rasteriser
    that is about ten times cheaper a frame (HalfCheetah 320x240: ~9 ms, not ~100), and the body
    and floor look the same. Actions are clipped exactly as the rollouts clip them. Raises
    RenderUnavailable, with nothing left at ``path``, when this machine cannot render or encode.
    """
    from esenas.rollout import action_bounds

    if quality not in QUALITIES:
        raise ValueError(f"quality: must be one of {', '.join(QUALITIES)}; got {quality!r}")

    width, height = (max(MACRO_BLOCK, s - s % MACRO_BLOCK) for s in size)
    backend = select_backend()
    try:
        env = _render_env(env_spec, width, height)
    except EnvironmentUnavailable as exc:
        raise RenderUnavailable(str(exc)) from exc
    part = path.with_name(f".{path.stem}.partial{path.suffix}")
    writer = None
    try:
        bounds = action_bounds(env, policy)
        mujoco = hasattr(env.unwrapped, "mujoco_renderer")  # else the task draws itself (pygame)
        obs, _ = env.reset(seed=seed)
        try:
            first = _frame(env)
            if quality == "fast" and _plain_scene(env):
                first = _frame(env)
        # MuJoCo creates its OpenGL context here: any failure is "cannot render", in one line.
        except Exception as exc:
            if mujoco:
                why = f"MuJoCo cannot render with MUJOCO_GL={backend}: {type(exc).__name__}: {one_line(exc)} ({INSTALL_HINT})"
            else:
                why = f"{env_spec.id} cannot render rgb_array frames: {type(exc).__name__}: {one_line(exc)}"
            raise RenderUnavailable(why) from exc
        dt = getattr(env.unwrapped, "dt", None)  # MuJoCo tasks: render_fps is 1/dt; others may say neither
        fps = float(env.metadata.get("render_fps") or (round(1.0 / dt) if dt else DEFAULT_FPS))
        max_frames = None if max_seconds is None else max(1, round(max_seconds * fps))
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = _writer(part, fps)
        frames, steps, rewards = 0, [], []
        for k in range(episodes):
            if k:
                obs, _ = env.reset(seed=seed + k)
                first = _frame(env)
            writer.append_data(first)
            frames += 1
            n, total = 0, 0.0
            while max_frames is None or frames < max_frames:
                action = policy.act(obs)
                if bounds is not None:
                    action = np.minimum(np.maximum(action, bounds[0]), bounds[1])
                obs, reward, terminated, truncated, _ = env.step(action)
                writer.append_data(_frame(env))
                frames, n, total = frames + 1, n + 1, total + float(reward)
                if terminated or truncated:
                    break
            steps.append(n)
            rewards.append(total)
            if max_frames is not None and frames >= max_frames:
                break
        writer.close()
        writer = None
        os.replace(part, path)
    finally:
        if writer is not None:
            writer.close()
        part.unlink(missing_ok=True)
        env.close()
    return Rendered(path, frames, fps, tuple(steps), tuple(rewards), backend if mujoco else "")


def _plain_scene(env: Any) -> bool:
    """Turn off the costly effects of a MuJoCo task's scene; False when it has no MuJoCo viewer."""
    import mujoco

    viewer = getattr(getattr(env.unwrapped, "mujoco_renderer", None), "viewer", None)
    scene = getattr(viewer, "scn", None)
    if scene is None:
        return False
    for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX):
        scene.flags[flag] = 0
    return True


def _frame(env: Any) -> np.ndarray:
    frame = np.asarray(env.render())
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise RenderUnavailable(f"the task rendered {frame.shape}, not an RGB frame")
    return frame
