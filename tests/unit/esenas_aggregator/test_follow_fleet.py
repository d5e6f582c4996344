"""The aggregator takes the live fields of an edited job file at an iteration boundary: a scaled
fleet's population, the stopping rules; it ignores the immutable ones with a warning."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from esenas.spec import JobSpec, parse_spec
from esenas_aggregator.follow import FleetFollower, population_update


def spec(replicas: int, es: dict[str, Any], **extra: Any) -> JobSpec:
    return parse_spec({"environment": {"id": "Toy-v0"}, "es": es, "workers": {"replicas": replicas}, **extra})


def test_a_job_that_follows_its_fleet_takes_the_new_population() -> None:
    running = spec(4, {"perturbationsPerWorker": 8})
    new = spec(10, {"perturbationsPerWorker": 8}, seed=99)  # other edits wait for a restart
    out = population_update(running, new)
    assert out is not None
    assert out.es.perturbations == 80 and out.workers.replicas == 10
    assert out.seed == running.seed


def test_a_fixed_population_or_no_change_is_left_alone() -> None:
    assert population_update(spec(4, {"perturbations": 16}), spec(10, {"perturbations": 16})) is None
    assert population_update(spec(4, {"perturbationsPerWorker": 8}), spec(4, {"perturbationsPerWorker": 8})) is None
    assert population_update(spec(4, {"perturbationsPerWorker": 8}), spec(10, {"perturbations": 16})) is None


def _write(path: Path, spec: dict[str, Any]) -> None:
    doc = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "j"}, "spec": spec}
    path.write_text(yaml.safe_dump(doc))


BASE: dict[str, Any] = {"environment": {"id": "Toy-v0"}, "es": {"perturbations": 16}, "stopping": {"maxIterations": 100}}


def test_a_running_job_takes_stopping_edits_at_the_next_boundary(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    _write(job, BASE)
    follower = FleetFollower(job)
    running = parse_spec(BASE)
    assert follower.poll(running, 0) is None
    _write(job, {**BASE, "stopping": {"maxIterations": 3, "targetReward": 50.0}})
    out = follower.poll(running, 4)
    assert out is not None and out.stopping.max_iterations == 3 and out.stopping.target_reward == 50.0
    assert follower.poll(out, 5) is None
    # A running spec restored from an older checkpoint (a restart, a refused update) takes the
    # file again although the file did not change since.
    again = follower.poll(running, 5)
    assert again is not None and again.stopping == out.stopping


def test_immutable_edits_in_the_file_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    job = tmp_path / "job.yaml"
    running = parse_spec(BASE)
    _write(job, {**BASE, "es": {"perturbations": 16, "rewardShift": 1.0}, "seed": 5})
    with caplog.at_level(logging.WARNING, logger="esenas_aggregator.follow"):
        assert FleetFollower(job).poll(running, 0) is None
    assert "they are ignored: spec.seed, spec.es.rewardShift" in caplog.text
