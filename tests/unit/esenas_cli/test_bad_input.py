"""Bad input to ``esenas``: one clear line on stderr and a non-zero exit, never a traceback or a hang."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.spec import PolicySpec
from esenas.topology import Topology
from esenas_cli.main import main

JOB = """\
apiVersion: esenas.dev/v1alpha1
kind: ESENASJob
metadata: {name: tiny}
spec:
  environment: {id: InvertedPendulum-v5, maxEpisodeSteps: 20}
  es: {perturbations: 2}
  stopping: {maxIterations: 2}
"""


def _job(tmp_path: Path, text: str = JOB, name: str = "job.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, f"want one line, got:\n{err}"
    return err.strip()


@pytest.mark.parametrize(("workers", "shown"), [("-1", "-1"), ("0", "0"), ("two", "'two'")])
def test_workers_below_one_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], workers: str, shown: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", _job(tmp_path), "--workers", workers])
    assert info.value.code == 2
    assert _one_line_error(capsys) == (
        f"esenas run: error: argument --workers: must be a positive integer, got {shown} (see esenas run --help)"
    )


def test_eval_zero_episodes_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["eval", str(tmp_path), "--episodes", "0"])
    assert info.value.code == 2
    assert "argument --episodes: must be a positive integer, got 0" in _one_line_error(capsys)


def test_http_port_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", _job(tmp_path), "--http-port", "70000"])
    assert "argument --http-port: must be a port number (0-65535), got 70000" in _one_line_error(capsys)


def test_unknown_env_id_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = _job(tmp_path, JOB.replace("InvertedPendulum-v5", "NoSuchTask-v3"))
    assert main(["run", job, "--output", str(tmp_path / "run")]) == 2
    assert _one_line_error(capsys) == (
        "error: spec.environment.id: unknown environment 'NoSuchTask-v3': "
        "Environment `NoSuchTask` doesn't exist. (use module:Class or module:Name-vN for your own environments)"
    )


def test_an_action_space_no_policy_can_emit_is_one_plain_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env_module: Any
) -> None:
    env_id = env_module("esenas_test_tuple_actions", "spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))")
    job = _job(tmp_path, JOB.replace("InvertedPendulum-v5", env_id))
    assert main(["run", job, "--output", str(tmp_path / "run")]) == 2
    assert _one_line_error(capsys) == (
        f"error: {job} is not a valid ESENASJob: spec.environment.id: '{env_id}' has an action "
        "space a policy cannot emit (Tuple(Discrete(2), Discrete(2))): supported are Box, Discrete, MultiDiscrete and "
        "MultiBinary actions"
    )


def test_unknown_version_names_the_known_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = _job(tmp_path, JOB.replace("InvertedPendulum-v5", "InvertedPendulum-v9"))
    assert main(["run", job, "--in-process"]) == 2
    assert "It provides versioned environments: [ `v2`, `v4`, `v5` ]" in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("env_id", "reason"),
    [
        ("no_such_module_xyz:Env", "environment 'no_such_module_xyz:Env' (module no_such_module_xyz, class Env): cannot import "
                                   "module no_such_module_xyz: ModuleNotFoundError: No module named 'no_such_module_xyz'"),
        ("json:NoSuchClass", "environment 'json:NoSuchClass' (module json, class NoSuchClass): module json has no class "
                             "NoSuchClass: AttributeError: module 'json' has no attribute 'NoSuchClass'"),
        ("json:NoSuchTask-v0", "environment 'json:NoSuchTask-v0' (module json, id NoSuchTask-v0): not registered by module "
                               "json: Environment `NoSuchTask` doesn't exist."),
    ],
)
def test_an_environment_that_does_not_import_is_the_aggregators_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], env_id: str, reason: str) -> None:
    """The same line as the aggregator's termination message (esenas.envload), without a traceback."""
    job = _job(tmp_path, JOB.replace("InvertedPendulum-v5", env_id))
    assert main(["run", job]) == 2
    assert _one_line_error(capsys) == f"error: spec.environment.id: {reason}"


def test_bad_env_kwargs_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = _job(tmp_path, JOB.replace("maxEpisodeSteps: 20", "maxEpisodeSteps: 20, kwargs: {bogus: 1}"))
    assert main(["run", job]) == 2
    assert "error: spec.environment.kwargs.bogus: environment 'InvertedPendulum-v5': cannot build it: TypeError: " in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "not a YAML text file: control character U+007F at character 0"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a YAML text file: byte 0 is not UTF-8"),
        (b"{\"apiVersion\": [1, 2\n", "invalid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'"),
        (b"import sys\nprint(sys.argv)\n", "must be an ESENASJob object, got string"),
    ],
)
def test_non_yaml_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, reason: str) -> None:
    path = tmp_path / "job.bin"
    path.write_bytes(content)
    assert main(["run", str(path)]) == 2
    assert _one_line_error(capsys) == f"error: {path}: {reason}"


def test_billion_laughs_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    laughs = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    job = _job(tmp_path, JOB.replace("maxEpisodeSteps: 20", "maxEpisodeSteps: 20, kwargs: {x: *i}") + laughs)
    assert main(["run", job]) == 2
    assert _one_line_error(capsys) == f"error: {job}: invalid YAML at line 5, column 75: YAML aliases are not allowed in a job file"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("esenas ") and out.split()[1][0].isdigit()


def test_http_port_with_in_process_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", _job(tmp_path), "--in-process", "--http-port", "9999"]) == 2
    assert _one_line_error(capsys) == "error: --http-port needs the aggregator process; --in-process serves no HTTP"


# --------------------------------------------------------------------------- eval of a malformed folder

def _policy() -> dict[str, Any]:
    """A linear InvertedPendulum-v5 policy, as a results folder holds it."""
    arch = Architecture(PolicySpec(), 4, 1)
    topo = Topology("dense", np.zeros(0, np.int64))
    return Policy(arch, topo, np.zeros(arch.num_params)).to_json(environment={"id": "InvertedPendulum-v5", "maxEpisodeSteps": 20})


POLICY = _policy()


def _eval(folder: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["eval", str(folder), *extra]) == 2
    return _one_line_error(capsys)


def test_eval_of_a_folder_without_a_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "summary.json").write_text("{}")
    assert _eval(tmp_path, capsys) == f"error: {tmp_path} holds no policy.json: not a results folder of esenas run (or the run has not finished)"


def test_eval_of_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _eval(tmp_path / "nope", capsys) == f"error: {tmp_path / 'nope'}: no such file or folder"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"params": [0.0, 1.0]}, "cannot load a policy from {p}: "),
        ({"obsMean": [0.0]}, "cannot load a policy from {p}: obsMean and obsStd must hold 4 numbers each"),
        ({"environment": None}, "cannot load a policy from {p}: "),
        ({"layers": "x"}, "cannot load a policy from {p}: "),
        ({"format": "pickle"}, "cannot load a policy from {p}: policy format: must be 'esenas.policy/v1', got 'pickle'"),
        ({"environment": {"id": "NoSuchTask-v3", "maxEpisodeSteps": 20}}, "{p}: unknown environment 'NoSuchTask-v3'"),
        ({"environment": {"id": "Pendulum-v1", "maxEpisodeSteps": 20}},
         "{p}: the policy has 4 inputs and 1 outputs, but Pendulum-v1 has 3 observations and 1 actions"),
    ],
)
def test_eval_of_a_malformed_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], reason: str) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({**POLICY, **change}))
    assert _eval(tmp_path, capsys).startswith("error: " + reason.format(p=policy))


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", ""])
def test_eval_of_a_policy_that_is_not_a_json_object(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    (tmp_path / "policy.json").write_text(text)
    assert _eval(tmp_path, capsys).startswith(f"error: cannot load a policy from {tmp_path / 'policy.json'}: ")


def test_eval_of_a_good_policy_still_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "policy.json").write_text(json.dumps(POLICY))
    assert main(["eval", str(tmp_path), "--episodes", "2"]) == 0
    assert "mean reward over 2 episodes" in capsys.readouterr().out


def test_more_workers_than_the_memory_holds_are_refused_before_any_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """5,000 local worker processes took 18 GiB within seconds on a 24 GiB machine before this check."""
    from esenas_cli import args

    assert args.too_many_workers(100, 64 * 100) is None
    assert args.too_many_workers(5, None) is None  # no /proc/meminfo: nothing to judge by
    from esenas_cli import run_processes

    monkeypatch.setattr(run_processes, "available_mib", lambda: 16 * 1024)
    assert main(["run", _job(tmp_path), "--workers", "5000", "--output", str(tmp_path / "out")]) == 2
    assert _one_line_error(capsys) == (
        "error: --workers 5000: that many worker processes need at least 312.5 GiB (64 MiB each) and this machine "
        "has 16.0 GiB available: at most 256 fit. A larger fleet runs on a cluster (kubectl apply -f JOB.yaml)"
    )
    assert not (tmp_path / "out").exists()


def test_an_output_that_is_a_file_or_cannot_be_created_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    assert main(["run", _job(tmp_path), "--output", str(a_file)]) == 2
    assert _one_line_error(capsys) == f"error: --output {a_file}: not a folder; name a new or existing folder for the run"
    assert a_file.read_text() == "mine\n"
    assert main(["run", _job(tmp_path), "--output", str(a_file / "run")]) == 2
    assert _one_line_error(capsys) == f"error: --output {a_file / 'run'}: cannot create the run folder: Not a directory"


def test_eval_refuses_a_video_path_it_cannot_write_before_any_episode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "policy.json").write_text(json.dumps(POLICY))
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    assert _eval(tmp_path, capsys, "--video", str(a_file / "x.mp4")) == f"error: --video {a_file / 'x.mp4'}: {a_file} is not a folder"
    assert _eval(tmp_path, capsys, "--video", str(tmp_path)) == f"error: --video {tmp_path}: is a folder; name the mp4 file to write"


def test_ctrl_c_in_eval_reports_the_episodes_that_finished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from esenas_cli import eval_cmd

    def two_then_ctrl_c(*_: object) -> Any:
        yield 3.0
        yield 5.0
        raise KeyboardInterrupt

    monkeypatch.setattr(eval_cmd, "episode_rewards", two_then_ctrl_c)
    (tmp_path / "policy.json").write_text(json.dumps(POLICY))
    assert main(["eval", str(tmp_path), "--episodes", "1000"]) == 130
    out, err = capsys.readouterr()
    assert "mean reward over 2 episodes: 4.0 (std 1.0, min 3.0, max 5.0)" in out
    assert err.strip() == "interrupted after 2 of 1000 episodes"


def test_a_second_run_in_a_folder_another_is_training_in_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two aggregators would write the same checkpoints; with --resume the second used to start."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from esenas_cli.run_folder import lock; "
         "f = lock(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        for extra in ([], ["--in-process"]):
            assert main(["run", _job(tmp_path), "--output", str(out), *extra]) == 2
            assert _one_line_error(capsys) == (
                f"error: --output {out}: another esenas run (pid {holder.pid}) is training in this folder; "
                "wait for it to stop, or pick another --output")
    finally:
        holder.kill()
        holder.wait()
    from esenas_cli.run_folder import lock

    held = lock(out)  # the kernel dropped the killed holder's lock
    assert not isinstance(held, str) and (out / "checkpoints" / ".lock").read_text() == f"{os.getpid()}\n"
    held.close()


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("metadata: {name: tiny}\n", "metadata: {name: tiny}\nfoo: 1\n",
         "foo: unknown field; an ESENASJob has only apiVersion, kind, metadata, spec and status"),
        ("metadata: {name: tiny}", "metadata: {name: tiny, foo: 1}", "metadata.foo: unknown field; an ObjectMeta has"),
        ("metadata: {name: tiny}", "metadata: {name: tiny, namespace: Bad_NS}", "metadata.namespace: must be a DNS-1123 label"),
        ("  es:", "  workers: {resources: {limits: {memory: -1Gi}}}\n  es:",
         "spec.workers.resources.limits.memory: must not be negative, got '-1Gi'"),
        ("  es:", "  aggregator: {checkpoint: {storageSize: '0'}}\n  es:",
         "spec.aggregator.checkpoint.storageSize: must be greater than zero (a PersistentVolumeClaim's size), got '0'"),
        ("  es:", "  workers: {replicas: 100000, shardSize: 1}\n  es:", "spec.workers.shardSize: 100000 worker Deployments"),
        ("InvertedPendulum-v5", "Hälf-v5", "spec.environment.id: must be a Gymnasium id"),
        ("{id: InvertedPendulum-v5,", "{id: Hopper-v5, kwargs: {healthy_reward: true},",
         "spec.environment.kwargs.healthy_reward: must be a number on Hopper, Walker2d and Humanoid"),
    ],
)
def test_esenas_run_refuses_what_the_api_server_or_the_operator_would_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, line: str
) -> None:
    assert old in JOB
    job = _job(tmp_path, JOB.replace(old, new))
    assert main(["run", job, "--output", str(tmp_path / "run")]) == 2
    assert _one_line_error(capsys).startswith(f"error: {job} is not a valid ESENASJob: {line}")
    assert not (tmp_path / "run").exists()


def test_esenas_run_ignores_a_status_as_kubectl_apply_does(tmp_path: Path) -> None:
    job = _job(tmp_path, JOB + "status: {phase: Succeeded}\n")
    assert main(["run", job, "--output", str(tmp_path / "run")]) == 0
