"""esenas.edits: which edits a running job takes, and which it must refuse or ignore."""

from __future__ import annotations

from typing import Any

import pytest
from esenas import edits
from esenas.spec import JobSpec, parse_spec


def spec(**extra: Any) -> JobSpec:
    return parse_spec({"environment": {"id": "Toy-v0"}, **extra})


@pytest.mark.parametrize("path", [*edits.LIVE, *edits.OPERATOR, *edits.IMMUTABLE])
def test_every_path_names_a_spec_field(path: str) -> None:
    edits._get(spec(), path)  # raises AttributeError on a typo or a renamed field


def test_stopping_and_the_checkpoint_interval_are_taken_live() -> None:
    running = spec(stopping={"maxIterations": 100})
    new = spec(stopping={"maxIterations": 5, "targetReward": 10.0}, aggregator={"checkpoint": {"everyIterations": 2}})
    out = edits.live_update(running, new)
    assert out is not None
    assert out.stopping == new.stopping and out.aggregator.checkpoint.every_iterations == 2
    assert edits.live_update(out, new) is None, "applying the same file again changes nothing"


def test_immutable_edits_are_not_taken_but_reported() -> None:
    chromatic = {"template": "mlp", "topology": "partition", "partitions": 4}
    running = spec(es={"perturbations": 16}, policy=chromatic)
    new = spec(es={"perturbations": 20, "rewardShift": 1.0}, seed=3, controller={"learningRate": 1.0}, policy=chromatic)
    assert edits.live_update(running, new) is None
    assert sorted(edits.immutable_changes(running, new)) == ["controller", "es.perturbations", "es.rewardShift", "seed"]


def test_a_per_worker_population_follows_the_fleet_and_a_switch_is_reported() -> None:
    running = spec(es={"perturbationsPerWorker": 8}, workers={"replicas": 2})
    scaled = spec(es={"perturbationsPerWorker": 8}, workers={"replicas": 5})
    out = edits.live_update(running, scaled)
    assert out is not None and out.es.perturbations == 40 and out.workers.replicas == 5
    assert edits.immutable_changes(running, scaled) == []
    assert edits.immutable_changes(running, spec(es={"perturbations": 16})) == ["es.perturbations"]
