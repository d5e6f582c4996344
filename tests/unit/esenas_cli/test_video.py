"""Rollout video: ``esenas eval --video`` writes an mp4 that decodes to one frame per state of each
episode; a run folder gains a short clip, or a note saying why it has none."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import gymnasium
import imageio.v2 as imageio
import numpy as np
import pytest
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.rollout import rollout
from esenas.spec import EnvironmentSpec, PolicySpec
from esenas_cli import clip, video
from esenas_cli.main import main

REPO = Path(__file__).resolve().parents[3]
TOP_LEVEL = ["history.json", "policy.json", "reward_curve.png", "summary.json", "topology.png"]
JOB = """\
apiVersion: esenas.dev/v1alpha1
kind: ESENASJob
metadata: {name: tiny}
spec:
  environment: {id: InvertedPendulum-v5, maxEpisodeSteps: 40}
  es: {perturbations: 2, topDirections: 2}
  stopping: {maxIterations: 2}
"""


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


@pytest.mark.parametrize("runtime", [["--in-process"], []], ids=["in-process", "processes"])
def test_run_folder_gains_a_clip_and_summary_says_so(runtime: list[str], renderer: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    job, out = tmp_path / "job.yaml", tmp_path / "run"
    job.write_text(JOB)
    assert main(["run", str(job), *runtime, "--workers", "1", "--output", str(out)]) == 0
    said = capsys.readouterr().out
    info = json.loads((out / "summary.json").read_text())["video"]
    assert info["file"] == clip.CLIP_FILE == "video/episode.mp4" and info["renderer"] == renderer
    frames = decode(out / clip.CLIP_FILE)
    assert len(frames) == info["frames"] == min(info["episodeSteps"] + 1, round(clip.CLIP_SECONDS * 25))
    assert frames[0].shape == (240, 320, 3) and info["fps"] == 25.0
    assert f"video: {out / clip.CLIP_FILE} ({info['seconds']:.1f} s, {info['frames']} frames" in said
    # the clip is the one optional output, so it sits in a subfolder: the top level is as always
    top = {p.name for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert top - {"MUJOCO_LOG.TXT"} == set(TOP_LEVEL)


def test_fetch_adds_the_same_clip_and_summary_entry(renderer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A fetched cluster result is the folder esenas run writes: the clip is drawn here, from policy.json."""
    from esenas_cli import fetch_cmd
    from esenas_cli.kubectl import Kubectl

    from tests.unit.esenas_cli.test_fetch import NAME, NS, Cluster, trained

    cluster = Cluster()
    cluster.store(cluster.add_job("Succeeded"), trained())
    monkeypatch.setattr(fetch_cmd, "Kubectl", lambda **kw: Kubectl(**kw, run=cluster))
    out = tmp_path / "fetched"
    assert main(["fetch", NAME, "-n", NS, "-o", str(out)]) == 0
    info = json.loads((out / "summary.json").read_text())
    assert list(info)[-1] == "video" and info["video"]["file"] == clip.CLIP_FILE
    assert len(decode(out / clip.CLIP_FILE)) == info["video"]["frames"]
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == TOP_LEVEL
    assert f"video: {out / clip.CLIP_FILE}" in capsys.readouterr().out
    assert main(["fetch", NAME, "-n", NS, "-o", str(tmp_path / "plain"), "--no-video"]) == 0
    assert json.loads((tmp_path / "plain" / "summary.json").read_text())["video"]["file"] is None


def test_no_video_leaves_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job, out = tmp_path / "job.yaml", tmp_path / "run"
    job.write_text(JOB)
    assert main(["run", str(job), "--in-process", "--workers", "1", "--output", str(out), "--no-video"]) == 0
    assert json.loads((out / "summary.json").read_text())["video"] == {"file": None, "note": "not rendered: --no-video"}
    assert not (out / "video").exists()
    assert "video: none (not rendered: --no-video)" in capsys.readouterr().out


def test_without_a_renderer_the_run_still_succeeds_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    job, out = tmp_path / "job.yaml", tmp_path / "run"
    job.write_text(JOB)
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(video.ctypes.util, "find_library", lambda name: None)  # no EGL, no OSMesa
    assert main(["run", str(job), "--in-process", "--workers", "1", "--output", str(out)]) == 0
    captured = capsys.readouterr()
    note = json.loads((out / "summary.json").read_text())["video"]
    assert note["file"] is None
    assert note["note"].startswith("not rendered: no offscreen OpenGL library (EGL or OSMesa) on this machine; "
                                   "scripts/fetch-render.sh installs")
    assert f"esenas eval {out} --video FILE renders it" in note["note"]
    assert f"video: none ({note['note']})" in captured.out and "error" not in captured.err
    assert not (out / "video").exists()

    # asked for explicitly, a video that cannot be rendered is an error, in one line
    assert main(["eval", str(out), "--episodes", "1", "--video", str(tmp_path / "v.mp4")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {tmp_path / 'v.mp4'}: no offscreen OpenGL") and err.count("\n") == 1
    assert not (tmp_path / "v.mp4").exists()


class Blind(gymnasium.Env[np.ndarray, np.ndarray]):
    """A task that draws nothing: its constructor takes no render_mode."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,))
    action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,))


def test_a_task_that_cannot_draw_gets_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy_folder(tmp_path, f"{__name__}:Blind", 10, 2, 1, 0.1)
    entry = clip.add_clip(tmp_path)
    assert entry["file"] is None and entry["note"].startswith("not rendered: spec.environment.id: ")
    assert "Blind(**kwargs) failed: TypeError: Blind() takes no arguments" in entry["note"]
    assert capsys.readouterr().out == f"video: none ({entry['note']})\n"
    assert not (tmp_path / "video").exists()


def test_bad_video_size_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(tmp_path), "--video", "v.mp4", "--video-size", "big"])
    assert exc.value.code == 2 and "must be WIDTHxHEIGHT such as 480x360, got 'big'" in capsys.readouterr().err


class Interrupted(gymnasium.Env[np.ndarray, np.ndarray]):
    """A task whose first drawn frame meets the user's Ctrl-C (SIGINT arrives mid-render)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,))
    action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,))

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode

    def reset(self, *, seed: int | None = None, options: dict[str, object] | None = None) -> tuple[np.ndarray, dict[str, object]]:
        super().reset(seed=seed)
        return np.zeros(2), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, object]]:
        return np.zeros(2), 0.0, False, False, {}

    def render(self) -> np.ndarray:
        raise KeyboardInterrupt


def test_ctrl_c_while_the_clip_renders_skips_only_the_clip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy_folder(tmp_path, f"{__name__}:Interrupted", 10, 2, 1, 0.1)
    (tmp_path / "summary.json").write_text(json.dumps({"bestReward": 1.0}))
    entry = clip.add_clip(tmp_path)
    assert entry == {"file": None, "note": f"not rendered: interrupted (Ctrl-C); esenas eval {tmp_path} --video FILE renders it"}
    assert json.loads((tmp_path / "summary.json").read_text()) == {"bestReward": 1.0, "video": entry}
    assert capsys.readouterr().out == f"video: none ({entry['note']})\n"
    assert not (tmp_path / "video" / "episode.mp4").exists()
