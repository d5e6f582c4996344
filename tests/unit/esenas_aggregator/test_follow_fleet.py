"""The aggregator takes a scaled fleet's population at an iteration boundary, and nothing else."""

from __future__ import annotations

from typing import Any

from esenas.spec import JobSpec, parse_spec
from esenas_aggregator.follow import population_update


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
