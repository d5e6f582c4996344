"""The CRD: no drift from the generator, same defaults as esenas.spec, and the same verdicts on bad specs."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from esenas.edits import immutable_message
from esenas.spec import SpecError, load_job, parse_spec
from esenas_operator.crd import build_crd, crd_yaml, open_api_schema

from tests.unit.esenas_operator.crdcheck import defaulted, validate

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))


def _job(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "t"}, "spec": spec}


def test_committed_crd_matches_the_generator() -> None:
    committed = (ROOT / "helm" / "esenas" / "crds" / "esenasjobs.yaml").read_text()
    assert committed == crd_yaml(), "run scripts/gen-crd.py"
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-crd.py"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_vendored_kubernetes_schemas_match_their_source() -> None:
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-kube-schemas.py"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    spec = open_api_schema()["properties"]["spec"]["properties"]
    qty = spec["workers"]["properties"]["resources"]["properties"]["requests"]["additionalProperties"]
    assert qty["x-kubernetes-int-or-string"] is True and qty["pattern"].startswith("^(\\+|-)?")
    toleration = spec["workers"]["properties"]["tolerations"]["items"]["properties"]
    assert toleration["operator"]["enum"] == ["Exists", "Equal", ""]
    assert toleration["effect"]["enum"] == ["NoSchedule", "PreferNoSchedule", "NoExecute", ""]
    assert "x-kubernetes-preserve-unknown-fields" not in json.dumps(spec["workers"]), "no free-form Kubernetes field"


@pytest.mark.parametrize("version", ["1.29", "1.33", "1.37"])
def test_crd_is_a_valid_kubernetes_object(version: str) -> None:
    kubernetes_validate.validate(build_crd(), version, strict=True)


def _walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for key, sub in schema.get("properties", {}).items():
        out += _walk(sub, f"{path}.{key}" if path else key)
    if "items" in schema:
        out += _walk(schema["items"], path + "[]")
    return out


def test_every_field_has_a_description() -> None:
    missing = [p for p, s in _walk(open_api_schema()) if p and not p.endswith("[]") and "description" not in s and p != "metadata"]
    assert missing == []


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def test_schema_defaults_equal_the_parser_defaults() -> None:
    """Every default in the schema is what parse_spec uses when the field is absent; a field without
    one is optional (None), required, or defaulted by the parser only where it applies (and its
    description says so)."""
    # a task without a survival bonus: es.rewardShift's default by task is tested in test_spec.py
    parsed = parse_spec({"environment": {"id": "HalfCheetah-v5"}})
    spec_schema = open_api_schema()["properties"]["spec"]
    checked, conditional = 0, []

    def compare(schema: dict[str, Any], obj: Any, path: str) -> None:
        nonlocal checked
        for key, sub in schema.get("properties", {}).items():
            attr = _snake(key)
            assert hasattr(obj, attr), f"{path}.{key} is not in esenas.spec"
            value = getattr(obj, attr)
            if dataclasses.is_dataclass(value):
                compare(sub, value, f"{path}.{key}")
            elif "default" in sub:
                assert sub["default"] == value, f"{path}.{key}: schema {sub['default']!r} != spec {value!r}"
                checked += 1
            elif sub.get("type") in ("integer", "number", "string", "boolean") and value is not None and key not in schema.get("required", []):
                assert f"Defaults to {json.dumps(value)} " in sub["description"], f"{path}.{key}: the description names the default"
                conditional.append(f"{path}.{key}")
        names = {_snake(k) for k in schema.get("properties", {})}
        fields = {f.name for f in dataclasses.fields(obj)} - {"raw_spec"}
        assert fields <= names, f"{path}: fields missing from the schema: {fields - names}"

    compare(spec_schema, parsed, "spec")
    assert checked >= 18
    # es.topDirections: unset stays None, a quarter of each update's pairs (esenas.es.top_count)
    assert parsed.es.top_directions is None
    assert "Defaults to a quarter of the pairs" in spec_schema["properties"]["es"]["properties"]["topDirections"]["description"]
    assert sorted(conditional) == [
        "spec.controller.algorithm", "spec.controller.baselineDecay", "spec.controller.entropyWeight",
        "spec.controller.learningRate", "spec.controller.mutationRate", "spec.controller.populationSize",
        "spec.controller.ppoClip", "spec.controller.ppoEpochs", "spec.controller.tournamentSize",
        "spec.controller.type", "spec.es.fitnessShaping", "spec.es.optimizer",
        "spec.es.perturbations", "spec.es.rewardShift", "spec.es.sigma", "spec.es.stepSize", "spec.objectives.sizeMethod",
        "spec.policy.clipActions",
        "spec.policy.searchSpace",
    ]


def test_the_api_server_defaults_only_fields_that_apply() -> None:
    """kubectl describe of a dense job shows no controller settings; the parser still applies them."""
    dense = defaulted(_job({"environment": {"id": "Hopper-v5"}}))["spec"]
    assert dense["controller"] == {}
    assert "searchSpace" not in dense["policy"] and "sizeMethod" not in dense["objectives"]
    assert parse_spec(dense) == parse_spec({"environment": {"id": "Hopper-v5"}})
    ppo = parse_spec({**ENV, "policy": {"topology": "partition", "partitions": 4}, "controller": {"algorithm": "ppo"}})
    assert (ppo.controller.type, ppo.controller.ppo_clip, ppo.controller.ppo_epochs) == ("policy_gradient", 0.2, 5)


def test_default_resources_are_documented_as_the_operator_applies_them() -> None:
    from esenas_operator.builders import DEFAULT_AGGREGATOR_RESOURCES, DEFAULT_WORKER_RESOURCES

    spec = open_api_schema()["properties"]["spec"]["properties"]
    for group, default in (("workers", DEFAULT_WORKER_RESOURCES), ("aggregator", DEFAULT_AGGREGATOR_RESOURCES)):
        text = spec[group]["properties"]["resources"]["description"]
        for kind, values in default.items():
            assert f"{kind} " + " and ".join(f"{k} {v}" for k, v in values.items()) in text, (group, text)


def test_defaulted_spec_parses_to_the_same_job() -> None:
    for path in EXAMPLES:
        doc = yaml.safe_load(path.read_text())
        assert parse_spec(defaulted(doc)["spec"]) == parse_spec(doc["spec"]), path.name


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_the_schema_and_the_parser(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert validate(doc) == []
    load_job(path)


ENV = {"environment": {"id": "Hopper-v5"}}
#: (spec, substring of the API server's message). The parser must reject every one too, naming the same field.
BAD: list[tuple[dict[str, Any], str]] = [
    ({}, "spec.environment: Required value"),
    ({"environment": {"id": "not an id"}}, "spec.environment.id: Invalid value: \"not an id\""),
    ({**ENV, "policy": {"topology": "partition"}}, "spec.policy.partitions: spec.policy.partitions is required"),
    ({**ENV, "policy": {"partitions": 4}}, "partitions only applies"),
    ({**ENV, "policy": {"topology": "edges"}, "controller": {"type": "random"}}, "edges is required"),
    ({**ENV, "policy": {"edges": 4}}, "edges only applies"),
    ({**ENV, "policy": {"template": "linear", "hiddenLayers": [8]}}, "must be empty for template 'linear'"),
    ({**ENV, "policy": {"template": "mlp", "hiddenLayers": []}}, "needs at least one hidden layer"),
    ({**ENV, "policy": {"template": "mlp", "hiddenLayers": [4] * 17}}, "spec.policy.hiddenLayers: Too many: 17"),
    ({**ENV, "policy": {"searchSpace": "residual_edges", "topology": "edges", "edges": 3}, "controller": {"type": "random"}}, "residual_edges"),
    ({**ENV, "policy": {"searchSpace": "path_edges", "topology": "edges", "edges": 4}, "controller": {"type": "random"}}, "'path_edges' needs template 'mlp'"),
    ({**ENV, "policy": {"topology": "partition", "partitions": 3}, "controller": {"type": "none"}}, "need a controller"),
    ({**ENV, "controller": {"type": "evolution"}}, "fixed topologies (dense, toeplitz, circulant) have nothing to search"),
    ({**ENV, "es": {"perturbations": 4, "topDirections": 8}}, "spec.es.topDirections: spec.es.topDirections must be <= perturbations"),
    ({**ENV, "es": {"topDirections": 33}}, "topDirections must be <= perturbations (default 32 for a linear policy, 64 for an mlp)"),
    ({**ENV, "policy": {"template": "mlp"}, "es": {"topDirections": 65}}, "topDirections must be <= perturbations (default 32 for a linear policy, 64 for an mlp)"),
    ({**ENV, "es": {"perturbations": 8, "perturbationsPerWorker": 2}}, "spec.es.perturbations and spec.es.perturbationsPerWorker are mutually exclusive"),
    ({**ENV, "es": {"perturbationsPerWorker": 100}, "workers": {"replicas": 20_000}}, "must be <= 1000000 perturbations"),
    ({**ENV, "es": {"perturbationsPerWorker": 2, "topDirections": 9}, "workers": {"replicas": 4}}, "topDirections must be <= perturbationsPerWorker"),
    ({**ENV, "es": {"perturbationsPerWorker": 2, "topDirections": 3}, "workers": {"replicas": 0}}, "topDirections must be <= perturbationsPerWorker"),
    ({**ENV, "es": {"sigma": 0}}, "should be greater than 0.0"),
    ({**ENV, "es": {"fitnessShaping": "rank"}}, 'Unsupported value: "rank"'),
    ({**ENV, "controller": {"populationSize": 4, "tournamentSize": 5}}, "tournamentSize must be <= populationSize"),
    ({**ENV, "controller": {"tournamentSize": 51}}, "tournamentSize must be <= populationSize"),
    ({**ENV, "policy": {"topology": "partition", "partitions": 3, "searchSpace": "independent_edges"}}, "searchSpace only applies"),
    # A controller field its type (or algorithm) does not read would be silently ignored.
    ({**ENV, "policy": {"topology": "partition", "partitions": 3}, "controller": {"type": "evolution", "learningRate": 4}},
     "spec.controller.learningRate is used only by controller type 'policy_gradient'"),
    ({**ENV, "policy": {"topology": "partition", "partitions": 3}, "controller": {"populationSize": 10}},
     "spec.controller.populationSize is used only by controller type 'evolution'"),
    ({**ENV, "policy": {"topology": "partition", "partitions": 3}, "controller": {"ppoClip": 0.1}},
     "spec.controller.ppoClip is used only by algorithm 'ppo'"),
    ({**ENV, "objectives": {"sizeWeight": 0.5}}, "targetSize is required"),
    ({**ENV, "workers": {"replicas": -1}}, "should be greater than or equal to 0"),
    ({**ENV, "workers": {"shardSize": 5000}}, "should be less than or equal to 3000"),
    ({**ENV, "aggregator": {"checkpoint": {"storageSize": "lots"}}}, "spec.aggregator.checkpoint.storageSize: Invalid value: \"lots\""),
    ({**ENV, "backoffLimit": "3"}, "must be of type integer"),
    ({**ENV, "surprise": 1}, "spec.surprise: unknown field"),
    ({**ENV, "es": {"typo": 1}}, "spec.es.typo: unknown field"),
    ({**ENV, "environment": {"id": "Hopper-v5", "kwargs": {f"k{i}": i for i in range(65)}}}, "spec.environment.kwargs: Too many: 65"),
    # Kubernetes-typed fields carry the real Kubernetes schemas.
    ({**ENV, "workers": {"resources": {"requests": {"cpu": "lots"}}}}, "spec.workers.resources.requests.cpu: Invalid value: \"lots\""),
    ({**ENV, "aggregator": {"resources": {"limits": {"memory": 1.5}}}}, "spec.aggregator.resources.limits.memory: Invalid value: 1.5"),
    ({**ENV, "workers": {"tolerations": [{"operator": "Sideways"}]}}, 'spec.workers.tolerations[0].operator: Unsupported value: "Sideways"'),
    ({**ENV, "workers": {"tolerations": [{"effect": "Sometimes"}]}}, 'spec.workers.tolerations[0].effect: Unsupported value: "Sometimes"'),
    ({**ENV, "workers": {"tolerations": [{"tolerationSeconds": "soon"}]}}, "spec.workers.tolerations[0].tolerationSeconds"),
    ({**ENV, "workers": {"nodeSelector": {"disk": 1}}}, "spec.workers.nodeSelector.disk"),
    ({**ENV, "workers": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}}}, "nodeSelectorTerms: Required value"),
    ({**ENV, "workers": {"affinity": {"podAffinity": {"sometimes": []}}}}, "spec.workers.affinity.podAffinity.sometimes: unknown field"),
    ({**ENV, "workers": {"priorityClassName": 7}}, "spec.workers.priorityClassName"),
    # ...tightened as the API server checks the pods and the claim (esenas.schema_pod).
    ({**ENV, "workers": {"nodeSelector": {"bad key!": "x"}}}, "spec.workers.nodeSelector: keys must be qualified names"),
    ({**ENV, "workers": {"nodeSelector": {"a/b/c": "x"}}}, "spec.workers.nodeSelector: keys must be qualified names"),
    ({**ENV, "workers": {"nodeSelector": {"disk": "not ok"}}}, 'spec.workers.nodeSelector.disk: Invalid value: "not ok"'),
    ({**ENV, "workers": {"priorityClassName": "Fast_SSD"}}, 'spec.workers.priorityClassName: Invalid value: "Fast_SSD"'),
    ({**ENV, "aggregator": {"checkpoint": {"storageClassName": "Fast_SSD"}}}, 'spec.aggregator.checkpoint.storageClassName: Invalid value: "Fast_SSD"'),
    ({**ENV, "workers": {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]}},
     "spec.workers.tolerations[0].value: must be empty when operator is 'Exists'"),
    ({**ENV, "workers": {"tolerations": [{"operator": "Equal"}]}}, "spec.workers.tolerations[0].operator: must be 'Exists' when key is empty"),
    ({**ENV, "workers": {"tolerations": [{"key": "gpu", "effect": "NoSchedule", "tolerationSeconds": 5}]}},
     "spec.workers.tolerations[0].effect: must be 'NoExecute' when tolerationSeconds is set"),
    ({**ENV, "workers": {"tolerations": [{"key": "a/b/c", "operator": "Exists"}]}}, 'spec.workers.tolerations[0].key: Invalid value: "a/b/c"'),
    ({**ENV, "workers": {"tolerations": [{"key": "x" * 254 + "/gpu", "operator": "Exists"}]}},
     "spec.workers.tolerations[0].key: must have a prefix (before '/') of at most 253 characters"),
    ({**ENV, "workers": {"tolerations": [{"key": "gpu", "value": "not ok"}]}}, 'spec.workers.tolerations[0].value: Invalid value: "not ok"'),
    ({**ENV, "workers": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": ""}]}}}},
     'spec.workers.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: ""'),
    ({**ENV, "workers": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {}}]}}}},
     "spec.workers.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0"),
]


def _field(message: str) -> str:
    return message.split(":", 1)[0]


@pytest.mark.parametrize(("spec", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_specs_are_rejected_by_the_crd_and_by_the_parser(spec: dict[str, Any], message: str) -> None:
    errors = validate(_job(spec))
    assert any(message in e for e in errors), errors
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    assert {e.path for e in info.value.errors} == {_field(e) for e in errors}, (info.value, errors)


def test_environment_and_policy_are_immutable_but_replicas_are_not() -> None:
    old = _job({**ENV, "policy": {"topology": "partition", "partitions": 4}, "workers": {"replicas": 2}})
    scaled = copy.deepcopy(old)
    scaled["spec"]["workers"]["replicas"] = 50
    scaled["spec"]["suspend"] = True
    assert validate(scaled, old) == []
    changed = copy.deepcopy(old)
    changed["spec"]["policy"]["partitions"] = 5
    assert validate(changed, old) == [f"spec.policy: {immutable_message('policy')}"]
    moved = copy.deepcopy(old)
    moved["spec"]["environment"]["id"] = "Walker2d-v5"
    assert validate(moved, old) == [f"spec.environment: {immutable_message('environment')}"]


def test_perturbations_per_worker_passes_and_bounds_what_scaling_may_do() -> None:
    """Per worker, the population follows replicas; a scale that breaks topDirections or the bound is refused."""
    old = _job({**ENV, "es": {"perturbationsPerWorker": 20, "topDirections": 30}, "workers": {"replicas": 4}})
    assert validate(old) == []
    assert "perturbations" not in defaulted(old)["spec"]["es"], "no schema default to collide with"
    assert parse_spec(old["spec"]).es.perturbations == 80
    down = copy.deepcopy(old)
    down["spec"]["workers"]["replicas"] = 1
    assert validate(down, old) == ["spec.es.topDirections: spec.es.topDirections must be <= perturbationsPerWorker x max(1, spec.workers.replicas)"]
    up = copy.deepcopy(old)
    up["spec"]["workers"]["replicas"] = 100_000
    assert validate(up, old) == [
        "spec.es.perturbationsPerWorker: spec.es.perturbationsPerWorker: perturbationsPerWorker x max(1, "
        "spec.workers.replicas) gives N perturbations; must be <= 1000000 perturbations"
    ]
    edge = _job({**ENV, "es": {"perturbationsPerWorker": 10}, "workers": {"replicas": 100_000}})
    assert validate(edge) == [], "10 x 100,000 is exactly the bound"
    assert parse_spec(edge["spec"]).es.perturbations == 1_000_000


def test_scale_subresource_and_columns() -> None:
    version = build_crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.workers.replicas"
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Phase", "Reason", "Iteration", "Best", "Workers", "Size", "Trial", "Age"]
    assert columns["Reason"] == ".status.reason"
    assert columns["Trial"] == ".status.trial"
    assert open_api_schema()["properties"]["status"]["properties"]["reason"]["type"] == "string"
    status = open_api_schema()["properties"]["status"]["properties"]
    assert "array" not in {s.get("type") for k, s in status.items() if k != "conditions"}, "counters only"
