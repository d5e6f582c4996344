"""Edits of a running job: the CRD refuses exactly the immutable paths of esenas.edits.

Each case edits one path of a valid job and checks the API server's verdict (schema, defaults
and CEL transition rules, as tests/unit/esenas_operator/crdcheck.py evaluates them).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from esenas import edits
from esenas.spec import parse_spec
from esenas_operator.crd import open_api_schema

from tests.unit.esenas_operator.crdcheck import validate

BASE: dict[str, Any] = {
    "environment": {"id": "Hopper-v5"},
    "policy": {"template": "mlp", "hiddenLayers": [8], "topology": "partition", "partitions": 4},
    "es": {"perturbations": 16},
    "workers": {"replicas": 2},
}
#: One valid edit per immutable path (the base leaves most of them at their defaults, so these
#: also check that setting a defaulted field for the first time is an edit).
IMMUTABLE_EDITS: dict[str, dict[str, Any]] = {
    "seed": {"seed": 7},
    "environment": {"environment": {"id": "Hopper-v5", "maxEpisodeSteps": 500}},
    "policy": {"policy": {**BASE["policy"], "partitions": 5}},
    "controller": {"controller": {"learningRate": 10.0}},
    "objectives": {"objectives": {"sizeMethod": "linear"}},
    "trials": {"trials": {"count": 2, "envSteps": 1000}},
    "es.sigma": {"es": {"perturbations": 16, "sigma": 0.2}},
    "es.stepSize": {"es": {"perturbations": 16, "stepSize": 0.1}},
    "es.stepSizeEndFraction": {"es": {"perturbations": 16, "stepSizeEndFraction": 0.5}},
    "es.perturbations": {"es": {"perturbations": 20}},
    "es.topDirections": {"es": {"perturbations": 16, "topDirections": 4}},
    "es.exactEvals": {"es": {"perturbations": 16, "exactEvals": 2}},
    "es.fitnessShaping": {"es": {"perturbations": 16, "fitnessShaping": "zscore"}},
    "es.optimizer": {"es": {"perturbations": 16, "optimizer": "sgd"}},
    "es.observationNormalization": {"es": {"perturbations": 16, "observationNormalization": False}},
    "es.rewardShift": {"es": {"perturbations": 16, "rewardShift": 2.0}},
    "es.minPairsFraction": {"es": {"perturbations": 16, "minPairsFraction": 0.9}},
    "workers.itemTimeoutSeconds": {"workers": {"replicas": 2, "itemTimeoutSeconds": 30.0}},
}
MUTABLE_EDITS: list[dict[str, Any]] = [
    {"stopping": {"maxIterations": 5, "targetReward": 100.0, "maxEnvSteps": 10, "maxEpisodes": 3, "deadlineSeconds": 60}},
    {"workers": {"replicas": 9, "image": "w:2", "batchSize": 4, "shardSize": 5, "nodeSelector": {"a": "b"}}},
    {"aggregator": {"image": "a:2", "checkpoint": {"everyIterations": 3}}},
    {"suspend": True, "ttlSecondsAfterFinished": 60, "backoffLimit": 1},
]


def _job(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "t"}, "spec": spec}


def test_every_immutable_path_has_an_edit_case() -> None:
    assert sorted(IMMUTABLE_EDITS) == sorted(edits.IMMUTABLE)


@pytest.mark.parametrize("path", sorted(IMMUTABLE_EDITS))
def test_an_edit_of_an_immutable_path_is_refused_with_its_message(path: str) -> None:
    old = _job(copy.deepcopy(BASE))
    new = _job({**copy.deepcopy(BASE), **IMMUTABLE_EDITS[path]})
    assert validate(new) == [], "the edited job is valid on its own"
    assert validate(new, old) == [f"spec.{path}: {edits.immutable_message(path)}"]


@pytest.mark.parametrize("change", MUTABLE_EDITS, ids=lambda c: ",".join(c))
def test_live_and_operator_fields_may_change(change: dict[str, Any]) -> None:
    old = _job(copy.deepcopy(BASE))
    assert validate(_job({**copy.deepcopy(BASE), **change}), old) == []


def test_the_population_may_follow_replicas_but_not_switch_how_it_is_given() -> None:
    per_worker = _job({**BASE, "es": {"perturbationsPerWorker": 8}})
    more = _job({**BASE, "es": {"perturbationsPerWorker": 12}, "workers": {"replicas": 6}})
    assert validate(more, per_worker) == []
    mode = f"spec.es: {edits.ES_MODE_RULE[1]}"
    assert validate(_job(BASE), per_worker) == [mode]
    assert validate(per_worker, _job(BASE)) == [mode]
    unset = _job({**BASE, "es": {}})
    assert validate(_job(BASE), unset) == [mode], "the default 32 made explicit is a switch too"


@pytest.mark.parametrize("template", ["linear", "mlp"])
def test_writing_out_a_template_default_is_not_an_edit_and_changing_it_is(template: str) -> None:
    """The ES defaults that depend on the template (esenas.es_defaults.MLP_ES_DEFAULTS) are not in the
    CRD: its rule compares the effective values, as the operator's parsed specs do."""
    policy = {"template": template, "topology": "partition", "partitions": 4}
    bare = {"environment": {"id": "Hopper-v5"}, "policy": policy}
    defaults = parse_spec(bare).es
    explicit = {**bare, "es": {"sigma": defaults.sigma, "optimizer": defaults.optimizer}}
    assert validate(_job(explicit), _job(bare)) == []
    assert validate(_job(bare), _job(explicit)) == []
    assert edits.immutable_changes(parse_spec(bare), parse_spec(explicit)) == []
    other = {**bare, "es": {"sigma": 0.5}}
    assert validate(_job(other), _job(bare)) == [f"spec.es.sigma: {edits.immutable_message('es.sigma')}"]
    assert validate(_job(bare), _job(other)) == [f"spec.es.sigma: {edits.immutable_message('es.sigma')}"]
    assert edits.immutable_changes(parse_spec(bare), parse_spec(other)) == ["es.sigma"]


def test_top_directions_unset_is_a_quarter_and_setting_or_removing_it_is_an_edit() -> None:
    """Unset, es.topDirections is a quarter of each update's pairs, which follows the population
    (esenas.es.top_count): no count written out equals it, so the CRD's rule and the parser both
    refuse setting it on a running job, removing it, or changing it."""
    bare = {**BASE, "es": {"perturbations": 16}}
    four = {**BASE, "es": {"perturbations": 16, "topDirections": 4}}
    eight = {**BASE, "es": {"perturbations": 16, "topDirections": 8}}
    message = [f"spec.es.topDirections: {edits.immutable_message('es.topDirections')}"]
    for old, new in ((bare, four), (four, bare), (four, eight)):
        assert validate(_job(new), _job(old)) == message
        assert edits.immutable_changes(parse_spec(old), parse_spec(new)) == ["es.topDirections"]
    assert validate(_job(four), _job(four)) == [] and validate(_job(bare), _job(bare)) == []
    assert edits.immutable_changes(parse_spec(bare), parse_spec(bare)) == []


def test_top_directions_by_task_is_compared_as_the_parser_resolves_it() -> None:
    """On a task that is not known to start from one state, unset es.topDirections is 0 (all pairs):
    writing out 0 is not an edit, any other count is (the CRD's rule and the parser agree)."""
    bare = {**BASE, "environment": {"id": "Reacher-v5"}, "es": {"perturbations": 16}}
    zero = {**bare, "es": {"perturbations": 16, "topDirections": 0}}
    four = {**bare, "es": {"perturbations": 16, "topDirections": 4}}
    message = [f"spec.es.topDirections: {edits.immutable_message('es.topDirections')}"]
    assert validate(_job(zero), _job(bare)) == [] and validate(_job(bare), _job(zero)) == []
    assert edits.immutable_changes(parse_spec(bare), parse_spec(zero)) == []
    assert validate(_job(four), _job(bare)) == message and validate(_job(bare), _job(four)) == message
    assert edits.immutable_changes(parse_spec(bare), parse_spec(four)) == ["es.topDirections"]


ENVIRONMENTS: list[dict[str, Any]] = [
    {"id": "Hopper-v5"},
    {"id": "Humanoid-v4"},
    {"id": "Walker2d-v5", "kwargs": {"healthy_reward": 2}},
    {"id": "Ant-v5", "kwargs": {"terminate_when_unhealthy": False}},
    {"id": "InvertedDoublePendulum-v5", "kwargs": {"healthy_reward": 3.0}},
    {"id": "HalfCheetah-v5"},
    {"id": "HumanoidStandup-v5"},
]


@pytest.mark.parametrize("environment", ENVIRONMENTS, ids=lambda e: e["id"] + ("+kwargs" if "kwargs" in e else ""))
def test_the_reward_shift_by_task_is_compared_as_the_parser_resolves_it(environment: dict[str, Any]) -> None:
    """es.rewardShift defaults to the task's survival bonus (esenas.es_defaults): the CRD's rule
    (CEL) and the parser agree on what counts as an edit, for each kind of task."""
    bare = {**BASE, "environment": environment, "es": {"perturbations": 16}}
    shift = parse_spec(bare).es.reward_shift
    same = {**bare, "es": {"perturbations": 16, "rewardShift": shift}}
    other = {**bare, "es": {"perturbations": 16, "rewardShift": shift + 0.5}}
    message = [f"spec.es.rewardShift: {edits.immutable_message('es.rewardShift')}"]
    assert validate(_job(same), _job(bare)) == [] and validate(_job(bare), _job(same)) == []
    assert validate(_job(other), _job(bare)) == message and validate(_job(bare), _job(other)) == message
    assert edits.immutable_changes(parse_spec(bare), parse_spec(same)) == []
    assert edits.immutable_changes(parse_spec(bare), parse_spec(other)) == ["es.rewardShift"]


def _paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        out.append(path)
        if sub.get("type") == "object" and "properties" in sub and "resources" not in key:
            out += _paths(sub, path)
    return out


def test_every_spec_field_has_exactly_one_meaning_when_edited() -> None:
    """A new field must be classed LIVE, OPERATOR, CREATED_ONCE or IMMUTABLE in esenas.edits, and only once."""
    classes = {"live": edits.LIVE, "operator": edits.OPERATOR, "created once": edits.CREATED_ONCE, "immutable": edits.IMMUTABLE}

    def owners(path: str) -> list[str]:
        return [
            name for name, paths in classes.items()
            for p in paths if path == p or path.startswith(p + ".") or p.startswith(path + ".")
        ]

    for path in _paths(open_api_schema()["properties"]["spec"]):
        found = owners(path)
        leafy = not any(p.startswith(path + ".") for paths in classes.values() for p in paths)
        if leafy:
            assert len(found) == 1, f"spec.{path}: edit meaning {found or 'missing'}"
