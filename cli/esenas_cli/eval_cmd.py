"""``esenas eval RESULTS_DIR``: replay the best policy with numpy and print its mean reward.

``--video FILE`` also renders the first episodes (the same seeds) to mp4 (esenas_cli.video).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from esenas.envload import one_line
from esenas.policies import Policy
from esenas.rollout import episode_rewards
from esenas.spec import EnvironmentSpec, FieldError

from esenas_cli import mujoco_log
from esenas_cli.args import positive_int
from esenas_cli.errors import EXIT_INTERRUPTED, environment_dims
from esenas_cli.results_dir import POLICY_FILE


def register(sub: Any) -> None:
    p = sub.add_parser("eval", help="replay the best policy of a results folder")
    p.add_argument("results", type=Path, help="results folder (or a policy.json)")
    p.add_argument("--episodes", type=positive_int, default=10)
    p.add_argument("--seed", type=int, default=0, help="first episode seed")
    p.add_argument("--video", type=Path, default=None, metavar="FILE",
                   help="render episodes to this mp4 with MuJoCo's offscreen renderer (EGL or OSMesa)")
    p.add_argument("--video-episodes", type=positive_int, default=1, metavar="N",
                   help="episodes in the video: the first N evaluated (default: 1)")
    p.add_argument("--video-size", type=frame_size, default=(480, 360), metavar="WxH",
                   help="frame size in pixels (default: 480x360)")
    p.add_argument("--video-quality", choices=["full", "fast"], default="full",
                   help="fast: no shadows, reflections or skybox, ~10x cheaper in software rendering (default: full)")
    p.set_defaults(func=main)


def frame_size(text: str) -> tuple[int, int]:
    """``WxH``, each 16 to 4096 pixels."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT such as 480x360, got {text!r}") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"width and height must be 16 to 4096 pixels, got {text!r}")
    return w, h


def main(args: argparse.Namespace) -> int:
    path: Path = args.results / POLICY_FILE if args.results.is_dir() else args.results
    loaded = load_policy(path)
    if isinstance(loaded, str):
        print(f"error: {loaded}", file=sys.stderr)
        return 2
    policy, env_spec = loaded
    mujoco_log.capture(path.parent)  # its warnings go to the results folder, not the working directory
    dims = environment_dims(env_spec)
    if isinstance(dims, FieldError):
        print(f"error: {path}: {dims.reason}", file=sys.stderr)
        return 2
    want = (policy.arch.layers[0], policy.arch.layers[-1])
    if dims != want:
        print(f"error: {path}: the policy has {want[0]} inputs and {want[1]} outputs, but {env_spec.id} "
              f"has {dims[0]} observations and {dims[1]} actions", file=sys.stderr)
        return 2
    if args.video is not None and (problem := _unwritable(args.video)):
        print(f"error: --video {args.video}: {problem}", file=sys.stderr)
        return 2
    print(f"{env_spec.id}: {policy.arch.kind} policy, {policy.trainable_params} trainable params "
          f"({policy.compression:.0%} compression)")
    rewards = _evaluate(policy, env_spec, args.episodes, args.seed)
    print(f"mean reward over {len(rewards)} episodes: {np.mean(rewards):.1f} (std {np.std(rewards):.1f}, "
          f"min {np.min(rewards):.1f}, max {np.max(rewards):.1f})" if rewards else "no episode finished")
    if len(rewards) < args.episodes:
        print(f"interrupted after {len(rewards)} of {args.episodes} episodes", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.video is not None:
        from esenas_cli import video

        try:
            r = video.render(policy, env_spec, args.video, episodes=args.video_episodes, seed=args.seed,
                             size=args.video_size, quality=args.video_quality)
        except video.RenderUnavailable as exc:
            print(f"error: cannot write {args.video}: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"error: cannot write {args.video}: {one_line(exc)}", file=sys.stderr)
            return 1
        n = len(r.steps)
        print(f"video: {r.path}, {n} episode{'s' * (n != 1)} ({', '.join(map(str, r.steps))} steps), "
              f"{r.frames} frames, {r.seconds:.1f} s at {r.fps:g} fps ({r.drawn_with})")
    return 0


def _evaluate(policy: Policy, env_spec: EnvironmentSpec, episodes: int, seed: int) -> list[float]:
    """The episodes' rewards, with a bar on a terminal; Ctrl-C keeps the ones finished."""
    from tqdm import tqdm

    rewards: list[float] = []
    bar = tqdm(total=episodes, unit="episode", dynamic_ncols=True, disable=None, leave=False)
    try:
        for r in episode_rewards(policy, env_spec, episodes, seed):
            rewards.append(r)
            bar.update()
            bar.set_postfix_str(f"mean {np.mean(rewards):.1f}", refresh=False)
    except KeyboardInterrupt:
        pass
    finally:
        bar.close()
    return rewards


def _unwritable(path: Path) -> str | None:
    """Why a file cannot be written at ``path``, checked before the episodes run, or None."""
    if path.is_dir():
        return "is a folder; name the mp4 file to write"
    folder = path.resolve().parent
    while not folder.exists():  # missing folders are made
        folder = folder.parent
    return None if folder.is_dir() else f"{folder} is not a folder"


def load_policy(path: Path) -> tuple[Policy, EnvironmentSpec] | str:
    """The policy and its environment from a policy.json, or one line saying what is wrong."""
    if not path.exists():
        folder = path.parent
        if path.name == POLICY_FILE and folder.is_dir():
            return f"{folder} holds no {POLICY_FILE}: not a results folder of esenas run (or the run has not finished)"
        return f"{path}: no such file or folder"
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"must be a JSON object, got {type(data).__name__}")
        policy = Policy.from_json(data)
        env = data["environment"]
        env_spec = EnvironmentSpec(str(env["id"]), dict(env.get("kwargs") or {}), int(env["maxEpisodeSteps"]))
        obs_dim = policy.arch.layers[0]
        if policy.obs_mean.shape != (obs_dim,) or policy.obs_std.shape != (obs_dim,):
            raise ValueError(f"obsMean and obsStd must hold {obs_dim} numbers each")
    # A hand-edited or truncated policy.json can fail in any of these ways; each is one line.
    except KeyError as exc:
        return f"cannot load a policy from {path}: missing field {exc}"
    except (OSError, ValueError, TypeError, IndexError, AttributeError) as exc:
        return f"cannot load a policy from {path}: {one_line(exc)}"
    return policy, env_spec
