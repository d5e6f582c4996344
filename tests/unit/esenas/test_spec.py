"""Spec parsing: defaults, and one clear message per bad field."""

from __future__ import annotations

import glob
from typing import Any

import pytest
from esenas.spec import SpecError, check_dimensions, load_job, parse_spec

BASE: dict[str, Any] = {"environment": {"id": "HalfCheetah-v5"}}


def _with(path: str, value: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"environment": {"id": "HalfCheetah-v5"}}
    node = spec
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return spec


def test_defaults() -> None:
    s = parse_spec(BASE)
    assert s.policy.topology == "dense"
    assert s.controller.type == "none"
    assert s.es.perturbations == 32
    assert s.workers.replicas == 4
    assert s.environment.max_episode_steps == 1000


def test_partition_defaults_to_policy_gradient_controller() -> None:
    s = parse_spec({**BASE, "policy": {"template": "mlp", "topology": "partition", "partitions": 17}})
    assert s.controller.type == "policy_gradient"
    assert s.policy.hidden_layers == (41,)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("policy.partitions", 0, "spec.policy.partitions: must be >= 1, got 0"),
        ("policy.template", "cnn", "spec.policy.template: must be one of linear, mlp; got 'cnn'"),
        ("policy.topology", "sparse", "spec.policy.topology: must be one of"),
        ("es.sigma", 0, "spec.es.sigma: must be > 0.0, got 0"),
        ("es.sigma", "big", "spec.es.sigma: must be a number, got string 'big'"),
        ("es.topDirections", 64, "spec.es.topDirections: must be <= perturbations (32), got 64"),
        ("es.fitnessShaping", "rank", "spec.es.fitnessShaping: must be one of none, zscore, centered_ranks"),
        ("es.observationNormalization", "yes", "spec.es.observationNormalization: must be true or false"),
        ("workers.replicas", -1, "spec.workers.replicas: must be >= 0, got -1"),
        ("workers.shardSize", 5000, "spec.workers.shardSize: must be <= 3000, got 5000"),
        ("stopping.maxIterations", 1.5, "spec.stopping.maxIterations: must be an integer, got float 1.5"),
        ("environment.id", "not a gym id", "spec.environment.id: must be a Gymnasium id"),
        ("environment.maxEpisodeSteps", 0, "spec.environment.maxEpisodeSteps: must be >= 1, got 0"),
        ("controller.type", "evolution", "spec.controller.type: topology 'dense' is fixed"),
        ("objectives.sizeWeight", 0.1, "spec.objectives.targetSize: required when sizeWeight > 0"),
        ("es.typo", 1, "spec.es.typo: unknown field"),
        ("aggregator.checkpoint.storageSize", "lots", "spec.aggregator.checkpoint.storageSize: must be a Kubernetes quantity"),
    ],
)
def test_bad_field_names_field_and_reason(path: str, value: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_with(path, value))
    assert any(str(e).startswith(message) for e in info.value.errors), info.value


def test_every_bad_field_reported_at_once() -> None:
    spec = {"environment": {"id": "x"}, "es": {"sigma": -1, "perturbations": 0}}
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    paths = {e.path for e in info.value.errors}
    assert paths == {"spec.environment.id", "spec.es.sigma", "spec.es.perturbations"}


def test_perturbations_per_worker_follows_the_replicas() -> None:
    s = parse_spec({**BASE, "es": {"perturbationsPerWorker": 8, "exactEvals": 4}, "workers": {"replicas": 125}})
    assert (s.es.perturbations, s.es.perturbations_per_worker, s.es.exact_evals) == (1000, 8, 4)
    idle = parse_spec({**BASE, "es": {"perturbationsPerWorker": 8}, "workers": {"replicas": 0}})
    assert idle.es.perturbations == 8, "a fleet scaled to zero still plans one worker's share"
    fixed = parse_spec({**BASE, "es": {"perturbations": 64}, "workers": {"replicas": 125}})
    assert (fixed.es.perturbations, fixed.es.perturbations_per_worker) == (64, None)


def test_perturbations_and_per_worker_are_exclusive() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "es": {"perturbations": 64, "perturbationsPerWorker": 8}})
    (err,) = info.value.errors
    assert err.path == "spec.es.perturbationsPerWorker"
    assert "cannot be set together with spec.es.perturbations" in err.reason


def test_perturbations_per_worker_times_replicas_is_bounded() -> None:
    ok = parse_spec({**BASE, "es": {"perturbationsPerWorker": 10}, "workers": {"replicas": 100_000}})
    assert ok.es.perturbations == 1_000_000
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "es": {"perturbationsPerWorker": 11}, "workers": {"replicas": 100_000}})
    (err,) = info.value.errors
    assert err.path == "spec.es.perturbationsPerWorker"
    assert err.reason == "11 x max(1, spec.workers.replicas 100000) = 1100000 perturbations; must be <= 1000000"


def test_top_directions_names_where_the_population_came_from() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "es": {"perturbationsPerWorker": 2, "topDirections": 9}, "workers": {"replicas": 4}})
    assert [str(e) for e in info.value.errors] == [
        "spec.es.topDirections: must be <= the effective perturbations "
        "(8 = perturbationsPerWorker 2 x max(1, workers.replicas 4)), got 9"
    ]


def test_missing_environment_id() -> None:
    with pytest.raises(SpecError, match=r"spec.environment.id: required"):
        parse_spec({})


def test_partition_needs_partitions() -> None:
    with pytest.raises(SpecError, match=r"spec.policy.partitions: required"):
        parse_spec({**BASE, "policy": {"topology": "partition"}})


def test_dimension_checks() -> None:
    s = parse_spec({**BASE, "policy": {"topology": "partition", "partitions": 500}})
    errs = check_dimensions(s, 17, 6)
    assert [e.path for e in errs] == ["spec.policy.partitions"]
    assert "102" in errs[0].reason
    ok = parse_spec({**BASE, "policy": {"topology": "partition", "partitions": 17}})
    assert check_dimensions(ok, 17, 6) == []


def test_whole_resource_checks_header(tmp_path: Any) -> None:
    f = tmp_path / "job.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {environment: {id: Hopper-v5}}\n")
    with pytest.raises(SpecError) as info:
        load_job(f)
    assert {e.path for e in info.value.errors} == {"apiVersion", "kind", "metadata.name"}


@pytest.mark.parametrize("path", sorted(glob.glob("manifests/examples/*.yaml")))
def test_examples_parse(path: str) -> None:
    job = load_job(path)
    assert job.spec.environment.id.endswith("-v5")
