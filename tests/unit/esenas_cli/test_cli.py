"""The esenas command: bad specs give one line per bad field and exit code 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from esenas.spec import load_job
from esenas_cli import run_processes
from esenas_cli.local_job import RESOLVED_JOB, follow_local_workers
from esenas_cli.main import build_parser, main
from esenas_cli.results_dir import best_text

BAD = """\
apiVersion: esenas.dev/v1alpha1
kind: ESENASJob
metadata: {name: bad}
spec:
  environment: {id: InvertedPendulum-v5}
  policy: {partitions: 0, template: cubic}
  es: {sigma: -1}
"""


def test_bad_spec_lists_every_field_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "bad.yaml"
    job.write_text(BAD)
    assert main(["run", str(job)]) == 2
    err = capsys.readouterr().err
    assert "spec.policy.partitions: must be >= 1, got 0" in err
    assert "spec.policy.template: must be one of linear, mlp; got 'cubic'" in err
    assert "spec.es.sigma: must be > 0.0, got -1" in err
    assert "Traceback" not in err


def test_dimension_errors_need_the_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "big.yaml"
    job.write_text(BAD.replace("{partitions: 0, template: cubic}", "{topology: partition, partitions: 99}").replace("{sigma: -1}", "{}"))
    assert main(["run", str(job)]) == 2
    assert "spec.policy.partitions: must be <= the number of weights (4)" in capsys.readouterr().err


def test_eval_of_a_missing_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path)]) == 2
    assert "holds no policy.json: not a results folder" in capsys.readouterr().err


def test_subcommands_are_registered() -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "x.yaml", "--workers", "3"]).workers == 3
    assert parser.parse_args(["eval", "dir", "--episodes", "4"]).episodes == 4


def test_the_deployables_add_their_subcommands_through_entry_points() -> None:
    """`esenas aggregator`, `esenas relay` and `esenas worker` come from the installed distributions' "esenas.commands"
    entry points; the CLI package imports neither (the layers contract)."""
    from importlib import metadata

    from esenas_cli.main import COMMANDS_GROUP

    eps = {ep.name: ep.value for ep in metadata.entry_points(group=COMMANDS_GROUP)}
    assert eps == {
        "aggregator": "esenas_aggregator.cli:register",
        "relay": "esenas_aggregator.relay_cli:register",
        "worker": "esenas_worker.cli:register",
    }
    parser = build_parser()
    agg = parser.parse_args(["aggregator", "--job", "j.yaml", "--port", "7"])
    assert (agg.job, agg.port, agg.func.__module__) == ("j.yaml", 7, "esenas_aggregator.cli")
    relay = parser.parse_args(["relay", "--upstream", "agg:50051", "--lease-items", "512"])
    assert (relay.upstream, relay.lease_items, relay.func.__module__) == ("agg:50051", 512, "esenas_aggregator.relay_cli")
    worker = parser.parse_args(["worker", "--aggregator", "h:1", "--worker-id", "w"])
    assert (worker.aggregator, worker.worker_id, worker.func.__module__) == ("h:1", "w", "esenas_worker.cli")


PER_WORKER = """\
apiVersion: esenas.dev/v1alpha1
kind: ESENASJob
metadata: {name: per-worker}
spec:
  environment: {id: InvertedPendulum-v5}
  es: {perturbationsPerWorker: 4, exactEvals: 2}
  workers: {replicas: 50, batchSize: 2}
"""


def test_per_worker_population_follows_the_local_workers(tmp_path: Path) -> None:
    src = tmp_path / "job.yaml"
    src.write_text(PER_WORKER)
    out = tmp_path / "run"
    path, job = follow_local_workers(src, load_job(src), 3, out)
    assert path == out / RESOLVED_JOB
    written = yaml.safe_load(path.read_text())
    assert written["spec"]["workers"] == {"replicas": 3, "batchSize": 2}
    assert written["spec"]["es"] == {"perturbationsPerWorker": 4, "exactEvals": 2}
    assert (job.spec.workers.replicas, job.spec.es.perturbations) == (3, 12)
    assert load_job(path).spec == job.spec, "the aggregator and workers read this same job"
    assert yaml.safe_load(src.read_text())["spec"]["workers"]["replicas"] == 50, "the user's file is untouched"


def test_fixed_population_runs_the_users_file(tmp_path: Path) -> None:
    src = tmp_path / "job.yaml"
    src.write_text(PER_WORKER.replace("perturbationsPerWorker: 4", "perturbations: 8"))
    job = load_job(src)
    assert follow_local_workers(src, job, 3, tmp_path / "run") == (src, job)
    assert not (tmp_path / "run").exists()


def test_run_hands_the_resolved_job_to_the_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run(self: run_processes.LocalFleet) -> int:
        seen.update(file=self.job_file, perturbations=self.job.spec.es.perturbations, workers=self.n_workers)
        return 0

    monkeypatch.setattr(run_processes.LocalFleet, "run", fake_run)
    src = tmp_path / "job.yaml"
    src.write_text(PER_WORKER)
    assert main(["run", str(src), "--workers", "5", "--output", str(tmp_path / "run")]) == 0
    assert seen == {"file": tmp_path / "run" / RESOLVED_JOB, "perturbations": 20, "workers": 5}


def test_too_many_local_workers_for_the_bound_is_a_spec_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "job.yaml"
    # Valid as written (400,000 x 2 replicas), too big with three local workers.
    src.write_text(PER_WORKER.replace("perturbationsPerWorker: 4", "perturbationsPerWorker: 400000").replace("replicas: 50", "replicas: 2"))
    assert main(["run", str(src), "--workers", "3", "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "with --workers 3 is not a valid ESENASJob" in err
    assert "spec.es.perturbationsPerWorker: 400000 x max(1, spec.workers.replicas 3) = 1200000 perturbations" in err


def test_one_iteration_with_a_controller_already_saves_a_best(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Iteration 0 has no incumbent; the first exact eval's topology is scored 4 times in its
    # place, so a 1-iteration run has a best policy (the closing line once read "best reward None").
    job = tmp_path / "job.yaml"
    job.write_text(
        "apiVersion: esenas.dev/v1alpha1\nkind: ESENASJob\nmetadata: {name: short}\nspec:\n"
        "  environment: {id: InvertedPendulum-v5, maxEpisodeSteps: 10}\n"
        "  policy: {topology: partition, partitions: 2}\n  es: {perturbations: 2}\n  stopping: {maxIterations: 1}\n"
    )
    out = tmp_path / "run"
    assert main(["run", str(job), "--in-process", "--no-video", "--fresh-episodes", "0", "--output", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "; best reward 10.0 after" in stdout  # InvertedPendulum pays 1 a step; 10 steps
    assert json.loads((out / "summary.json").read_text())["bestReward"] == 10.0
    assert best_text(None) == "none yet (no iteration completed)" and best_text(3.14159) == "3.1"


def test_esenas_run_names_the_defaults_the_task_chose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A Hopper job that sets no shift learns on rewards shifted by its survival bonus: say so.
    job = tmp_path / "job.yaml"
    job.write_text(
        "apiVersion: esenas.dev/v1alpha1\nkind: ESENASJob\nmetadata: {name: hop}\nspec:\n"
        "  environment: {id: Hopper-v5, maxEpisodeSteps: 5}\n  es: {perturbations: 2, exactEvals: 0}\n  stopping: {maxIterations: 1}\n"
    )
    out = tmp_path / "run"
    assert main(["run", str(job), "--in-process", "--no-video", "--fresh-episodes", "0", "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("training hop: Hopper-v5")
    assert lines[1] == "defaults for Hopper-v5: es.rewardShift 1 (the task's survival bonus) (docs/tuning.md)"
