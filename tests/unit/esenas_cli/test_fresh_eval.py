"""The found policy on fresh episodes: ``esenas run`` (both runtimes) and ``esenas fetch`` replay the
saved policy on new episodes and put the result in summary.json, so a training score that was the
highest of many noisy ones is seen next to what the policy does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.rollout import make_env, rollout
from esenas.spec import EnvironmentSpec, PolicySpec
from esenas_cli import fresh_eval
from esenas_cli.main import main

JOB = """\
apiVersion: esenas.dev/v1alpha1
kind: ESENASJob
metadata: {name: tiny}
spec:
  environment: {id: Reacher-v5}
  es: {perturbations: 2, topDirections: 2}
  stopping: {maxIterations: 2}
"""


def folder(tmp_path: Path, env_id: str, best: float | None) -> tuple[Path, Policy]:
    """A results folder holding a random linear policy for ``env_id`` and a summary."""
    env = make_env(EnvironmentSpec(env_id))
    obs, act = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    arch = Architecture(PolicySpec(template="linear", topology="dense"), obs, act)
    policy = Policy(arch, arch.default_topology(), np.random.default_rng(0).normal(0.0, 0.3, arch.num_params))
    policy.save(tmp_path / "policy.json", environment={"id": env_id, "maxEpisodeSteps": 50, "kwargs": {}},
                reward=best, iteration=3)
    (tmp_path / "summary.json").write_text(json.dumps({"job": "j", "bestReward": best}))
    return tmp_path, policy


def test_the_entry_is_the_saved_policy_on_new_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, policy = folder(tmp_path, "Reacher-v5", best=-1.0)
    entry = fresh_eval.add_fresh_eval(out, 4)
    env = make_env(EnvironmentSpec("Reacher-v5", max_episode_steps=50))
    want = [rollout(env, policy, fresh_eval.FRESH_SEED + k)[0] for k in range(4)]
    env.close()
    assert entry["episodes"] == 4 and entry["firstSeed"] == fresh_eval.FRESH_SEED == 1_000_000
    assert entry["mean"] == pytest.approx(np.mean(want)) and entry["std"] == pytest.approx(np.std(want))
    assert (entry["min"], entry["max"]) == pytest.approx((min(want), max(want)))
    info = json.loads((out / "summary.json").read_text())
    assert info == {"job": "j", "bestReward": -1.0, "freshEval": entry}  # the other keys kept, in order
    said = capsys.readouterr().out
    assert f"fresh episodes: the best policy scored {np.mean(want):.1f} on average over 4 new episodes" in said
    # a random policy scores far below -1 on Reacher: the training score is flagged as overstated
    assert "its training score -1.0 was the highest of many noisy scores" in said and "es.exactEvals" in said


def test_a_training_score_within_the_noise_is_not_flagged() -> None:
    entry = {"episodes": 10, "mean": -8.0, "std": 4.0}
    assert fresh_eval.overstated(-1.0, entry)  # 7 above, beyond 3 standard errors (3.8)
    assert not fresh_eval.overstated(-5.0, entry)  # 3 above: within them
    assert not fresh_eval.overstated(-9.0, entry)  # below the fresh mean
    # a near-deterministic task: a gap under 5% of the score is no gap
    steady = {"episodes": 10, "mean": 2900.0, "std": 0.5}
    assert not fresh_eval.overstated(3000.0, steady) and fresh_eval.overstated(3200.0, steady)
    assert "noisy" not in fresh_eval.line({**steady, "min": 2899.0, "max": 2901.0}, 3000.0)


def test_turned_off_or_skipped_leaves_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = folder(tmp_path, "Reacher-v5", best=-1.0)
    assert fresh_eval.add_fresh_eval(out, 0) == {"mean": None, "note": "not evaluated: turned off"}
    assert fresh_eval.add_fresh_eval(out, 10, why_not="the run was interrupted")["note"] == (
        "not evaluated: the run was interrupted")
    assert json.loads((out / "summary.json").read_text())["freshEval"]["mean"] is None
    assert "fresh episodes: none (not evaluated: the run was interrupted)" in capsys.readouterr().out


def test_a_task_this_machine_cannot_build_is_a_note_not_an_error(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = folder(tmp_path, "Reacher-v5", best=-1.0)
    data = json.loads((out / "policy.json").read_text())
    data["environment"]["id"] = "no_such_module_here:Task-v0"  # only the cluster's image has it
    (out / "policy.json").write_text(json.dumps(data))
    entry = fresh_eval.add_fresh_eval(out, 3)
    assert entry["mean"] is None and "no_such_module_here" in entry["note"]
    assert "warning: the fresh episodes failed" in capsys.readouterr().err


@pytest.mark.parametrize("runtime", [["--in-process"], []], ids=["in-process", "processes"])
def test_a_run_folder_has_it_before_the_clip(runtime: list[str], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    job, out = tmp_path / "job.yaml", tmp_path / "run"
    job.write_text(JOB)
    args = ["run", str(job), *runtime, "--workers", "1", "--output", str(out), "--no-video", "--fresh-episodes", "3"]
    assert main(args) == 0
    info = json.loads((out / "summary.json").read_text())
    assert list(info)[-2:] == ["freshEval", "video"]
    assert info["freshEval"]["episodes"] == 3 and np.isfinite(info["freshEval"]["mean"])
    assert "over 3 new episodes" in capsys.readouterr().out


def test_a_negative_count_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(JOB)
    with pytest.raises(SystemExit) as exc:
        main(["run", str(job), "--fresh-episodes", "-1"])
    assert exc.value.code == 2
    assert "argument --fresh-episodes: must be a whole number >= 0, got -1" in capsys.readouterr().err
