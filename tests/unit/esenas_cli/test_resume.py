"""The run folder: a run never restarts over an old one; ``--in-process --resume`` continues it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from esenas.spec import load_job
from esenas.trainer import Trainer
from esenas_cli import run_folder
from esenas_cli.main import main

JOB = """\
apiVersion: esenas.dev/v1alpha1
kind: ESENASJob
metadata: {name: tiny}
spec:
  environment: {id: InvertedPendulum-v5, maxEpisodeSteps: 20}
  es: {perturbations: 2, topDirections: 2}
  stopping: {maxIterations: 4}
"""


def _job(tmp_path: Path) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(JOB)
    return str(path)


def _checkpoint_after(job: str, out: Path, iterations: int) -> None:
    """The run folder a run leaves when it is stopped after ``iterations``."""
    trainer = Trainer(load_job(job).spec, workers=1)
    for _ in range(iterations):
        trainer.step()
    trainer.close()
    assert trainer.algo is not None
    run_folder.save_checkpoint(out, trainer.algo, "Running", "")


def test_in_process_resume_continues_from_the_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job, out = _job(tmp_path), tmp_path / "run"
    _checkpoint_after(job, out, 2)
    assert main(["run", job, "--in-process", "--workers", "1", "--output", str(out), "--resume"]) == 0
    assert "resuming from iteration 2 (ckpt-0000000002.esck" in capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())
    assert [h["iteration"] for h in history] == [0, 1, 2, 3]  # two more iterations, not four from scratch
    assert json.loads((out / "summary.json").read_text())["iterations"] == 4
    assert (out / "checkpoints" / "ckpt-0000000004.esck").exists()  # resumable by either runtime


def test_in_process_run_checkpoints_so_it_can_be_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job, out = _job(tmp_path), tmp_path / "run"
    assert main(["run", job, "--in-process", "--workers", "1", "--output", str(out)]) == 0
    resumed = run_folder.load_resumed(out)
    assert not isinstance(resumed, str)
    assert (resumed.algo.iteration, resumed.phase) == (4, "Succeeded")


@pytest.mark.parametrize("in_process", [True, False])
def test_a_folder_with_a_run_is_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str], in_process: bool) -> None:
    job, out = _job(tmp_path), tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text('{"iterations": 7}')
    flags = ["--in-process"] if in_process else []
    assert main(["run", job, *flags, "--output", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {out} already holds a run; add --resume to continue it, or pick another --output\n"
    assert (out / "summary.json").read_text() == '{"iterations": 7}'


@pytest.mark.parametrize("in_process", [True, False])
def test_resume_without_a_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], in_process: bool) -> None:
    job = _job(tmp_path)
    flags = ["--in-process"] if in_process else []
    assert main(["run", job, *flags, "--resume"]) == 2
    assert capsys.readouterr().err == "error: --resume needs --output DIR, the folder of the run to continue\n"
    assert main(["run", job, *flags, "--resume", "--output", str(tmp_path / "empty")]) == 2
    assert "holds no checkpoint to continue from" in capsys.readouterr().err


def test_an_unreadable_checkpoint_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job, out = _job(tmp_path), tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "ckpt-0000000003.esck").write_bytes(b"garbage")
    assert main(["run", job, "--in-process", "--output", str(out), "--resume"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot resume from {out / 'checkpoints'}: ") and err.count("\n") == 1


@pytest.mark.parametrize("in_process", [True, False])
def test_resume_after_an_immutable_edit_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], in_process: bool) -> None:
    """The restarted workers would read the edited file while the checkpoint keeps the old
    values (rewardShift, observationNormalization): refused, naming the fields."""
    job, out = _job(tmp_path), tmp_path / "run"
    _checkpoint_after(job, out, 1)
    Path(job).write_text(JOB.replace("topDirections: 2}", "topDirections: 2, rewardShift: 1.0}"))
    argv = ["run", job, "--output", str(out), "--resume", "--workers", "1", *(["--in-process"] if in_process else [])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--resume:" in err and "changed spec.es.rewardShift since this run started" in err and "Traceback" not in err
    assert len(run_folder.load_resumed(out).algo.history) == 1  # type: ignore[union-attr]  # nothing trained
