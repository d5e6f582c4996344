"""Rollout video: ``esenas eval --video`` writes an mp4 that decodes to one frame per state of each
episode."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.rollout import rollout
from esenas.spec import EnvironmentSpec, PolicySpec
from esenas_cli import video
from esenas_cli.main import main

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def renderer() -> str:
    """The backend this machine renders with; the project's own script installs Mesa when missing.
    Skips only when rendering is unavailable and that script could not install it."""
    try:
        return video.select_backend()
    except video.RenderUnavailable:
        subprocess.run([str(REPO / "scripts/fetch-render.sh")], check=False, timeout=600)
    try:
        return video.select_backend()
    except video.RenderUnavailable as exc:
        pytest.skip(f"no offscreen rendering and scripts/fetch-render.sh could not install it: {exc}")


def policy_folder(folder: Path, env_id: str, steps: int, obs: int, act: int, scale: float) -> Policy:
    rng = np.random.default_rng(0)
    arch = Architecture(PolicySpec(template="linear", topology="dense"), obs, act)
    policy = Policy(arch, arch.default_topology(), rng.normal(0.0, scale, arch.num_params))
    folder.mkdir(parents=True, exist_ok=True)
    policy.save(folder / "policy.json", environment={"id": env_id, "maxEpisodeSteps": steps, "kwargs": {}},
                reward=None, iteration=1)
    return policy


def decode(path: Path) -> list[np.ndarray]:
    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        return [np.asarray(f) for f in reader]


def test_eval_video_has_one_frame_per_state_of_each_episode(renderer: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # A poor InvertedPendulum policy: its episodes end when the pole falls, at different steps.
    policy = policy_folder(tmp_path / "run", "InvertedPendulum-v5", 60, 4, 1, 0.3)
    spec = EnvironmentSpec("InvertedPendulum-v5", {}, 60)
    from esenas.envload import make_env

    env = make_env(spec)
    steps = [rollout(env, policy, seed)[1] for seed in (5, 6, 7)]
    env.close()
    assert any(s < 60 for s in steps), steps  # at least one terminates: the cut is the task's own
    out = tmp_path / "clips" / "eval.mp4"
    assert main(["eval", str(tmp_path / "run"), "--episodes", "3", "--seed", "5", "--video", str(out),
                 "--video-episodes", "3", "--video-size", "160x120"]) == 0
    frames = decode(out)
    assert len(frames) == sum(s + 1 for s in steps)  # the reset state, then one frame per step
    assert frames[0].shape == (120, 160, 3)
    assert not (tmp_path / "clips" / ".eval.partial.mp4").exists()
    said = capsys.readouterr().out
    assert f"video: {out}, 3 episodes ({', '.join(map(str, steps))} steps), {len(frames)} frames" in said
    assert f"at 25 fps (MUJOCO_GL={renderer})" in said  # InvertedPendulum-v5 renders at 1/dt = 25 fps


def test_eval_video_shows_the_moving_cheetah(renderer: str, tmp_path: Path) -> None:
    policy_folder(tmp_path / "run", "HalfCheetah-v5", 15, 17, 6, 0.5)
    out = tmp_path / "cheetah.mp4"
    assert main(["eval", str(tmp_path / "run"), "--episodes", "1", "--video", str(out), "--video-size", "160x120"]) == 0
    frames = decode(out)
    assert len(frames) == 16  # HalfCheetah never terminates: 15 steps, truncated
    first, last = frames[0].astype(float), frames[-1].astype(float)
    assert first.std() > 20  # a real picture (the checkered floor), not a blank frame
    assert np.abs(last - first).mean() > 1.0  # the body moved between the first and last frame


def test_bad_video_size_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(tmp_path), "--video", "v.mp4", "--video-size", "big"])
    assert exc.value.code == 2 and "must be WIDTHxHEIGHT such as 480x360, got 'big'" in capsys.readouterr().err
