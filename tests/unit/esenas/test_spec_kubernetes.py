"""What the API server would refuse around and inside the spec is refused locally too, naming the
field: quantities and resource lists (the operator's pods and claim), the job document's top level
and metadata (kubectl's strict field validation), and the environment id's pattern as RE2 reads it."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from esenas.schema_quantity import QuantityError, parse_quantity, quantity_fields
from esenas.spec import JobSpec, SpecError, load_job, parse_spec

ENV: dict[str, Any] = {"environment": {"id": "HalfCheetah-v5"}}


def _errors(spec: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Fraction(1)), (2, Fraction(2)), ("500m", Fraction(1, 2)), ("1Gi", Fraction(2**30)), ("1.5Ki", Fraction(1536)),
        ("1k", Fraction(1000)), ("1M", Fraction(10**6)), ("1E", Fraction(10**18)), ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)), ("1e-3", Fraction(1, 1000)), (".5", Fraction(1, 2)), ("+2", Fraction(2)),
        ("-1Gi", Fraction(-(2**30))), ("1u", Fraction(1, 10**6)), ("0.0000000001", Fraction(1, 10**9)),
        ("99999999999999999999Ei", Fraction(2**63 - 1)), ("0", Fraction(0)),
    ],
)
def test_quantities_parse_exactly_as_apimachinery(text: int | str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["lots", "1e1.5", "1e", "Ki", "1K", "1e99999999999"])
def test_text_that_is_no_quantity_is_refused(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_every_resources_field_and_size_of_the_spec_is_checked() -> None:
    assert dict(quantity_fields(JobSpec)) == {
        "workers.resources": "resources", "aggregator.resources": "resources",
        "aggregator.checkpoint.storageSize": "size", "relays.resources": "resources",
    }


@pytest.mark.parametrize(
    ("group", "resources", "message"),
    [
        ("workers", {"limits": {"memory": "-1Gi"}}, "spec.workers.resources.limits.memory: must not be negative, got '-1Gi'"),
        ("workers", {"requests": {"cpu": -1}}, "spec.workers.resources.requests.cpu: must not be negative, got -1"),
        ("aggregator", {"limits": {"memory": "-5"}}, "spec.aggregator.resources.limits.memory: must not be negative"),
        ("relays", {"limits": {"cpu": "-1"}}, "spec.relays.resources.limits.cpu: must not be negative"),
        ("workers", {"requests": {"cpu": "4"}, "limits": {"cpu": "1"}}, "spec.workers.resources.requests.cpu: must be <= limits.cpu (1), got '4'"),
        ("workers", {"requests": {"memory": "2Gi"}, "limits": {"memory": "2000Mi"}}, "spec.workers.resources.requests.memory: must be <= limits.memory (2000Mi)"),
        ("aggregator", {"requests": {"cpu": "1500m"}, "limits": {"cpu": 1}}, "spec.aggregator.resources.requests.cpu: must be <= limits.cpu (1)"),
        ("workers", {"limits": {"foo": "1"}}, "spec.workers.resources.limits.foo: unknown resource 'foo': must be cpu, memory, ephemeral-storage, hugepages-<page size> or an extended resource"),
        ("workers", {"requests": {"gpu": 1}}, "spec.workers.resources.requests.gpu: unknown resource 'gpu'"),
        ("workers", {"limits": {"bad_domain/gpu": 1}}, "spec.workers.resources.limits.bad_domain/gpu: is not a valid extended resource name"),
        ("workers", {"limits": {"requests.example.com/x": 1}}, "spec.workers.resources.limits.requests.example.com/x: must not start with 'requests.'"),
        ("workers", {"limits": {"example.kubernetes.io/x": 1}}, "spec.workers.resources.limits.example.kubernetes.io/x: is in the kubernetes.io namespace"),
        ("workers", {"limits": {"nvidia.com/gpu": "1.5"}}, "spec.workers.resources.limits.nvidia.com/gpu: must be a whole number"),
        ("workers", {"requests": {"nvidia.com/gpu": 1}}, "spec.workers.resources.requests.nvidia.com/gpu: needs limits.nvidia.com/gpu too"),
        ("workers", {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}}, "spec.workers.resources.requests.nvidia.com/gpu: must equal limits.nvidia.com/gpu (2)"),
        ("workers", {"limits": {"memory": "1Gi", "hugepages-2Mi": "3Mi"}}, "spec.workers.resources.limits.hugepages-2Mi: must be a multiple of the page size 2Mi"),
        ("workers", {"limits": {"memory": "1Gi", "hugepages-huge": "2Mi"}}, "spec.workers.resources.limits.hugepages-huge: names no page size"),
        ("workers", {"limits": {"hugepages-2Mi": "2Mi"}}, "spec.workers.resources: hugepages need a cpu or memory request or limit too"),
        ("workers", {"claims": [{"name": "gpu"}]}, "spec.workers.resources.claims: must be empty"),
        ("workers", {"limits": {"cpu": "1e1.5"}}, "spec.workers.resources.limits.cpu: must be a Kubernetes quantity such as 500m, 2 or 1Gi, with a whole exponent, got '1e1.5'"),
    ],
)
def test_resources_the_api_server_would_refuse_in_the_pods_are_refused(group: str, resources: dict[str, Any], message: str) -> None:
    errors = _errors({**ENV, group: {"resources": resources}})
    assert len(errors) == 1 and errors[0].startswith(message), errors


@pytest.mark.parametrize(
    "resources",
    [
        {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": 1, "memory": "1073741824"}},
        {"requests": {"cpu": "1e3", "ephemeral-storage": "1G"}, "limits": {"memory": "1Gi"}},
        {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi", "nvidia.com/gpu": 2, "hugepages-2Mi": "4Mi"}},
        {"requests": {"example.com/fpga": "1", "cpu": 0}, "limits": {"example.com/fpga": 1}},
        {},
    ],
)
def test_sound_resources_are_kept_as_given(resources: dict[str, Any]) -> None:
    for group in ("workers", "aggregator", "relays"):
        assert getattr(parse_spec({**ENV, group: {"resources": resources}}), group).resources == resources


@pytest.mark.parametrize(("size", "message"), [
    ("-1Gi", "must be greater than zero (a PersistentVolumeClaim's size), got '-1Gi'"),
    ("0", "must be greater than zero (a PersistentVolumeClaim's size), got '0'"),
    ("0Gi", "must be greater than zero (a PersistentVolumeClaim's size), got '0Gi'"),
])
def test_a_checkpoint_claim_of_no_size_is_refused(size: str, message: str) -> None:
    assert _errors({**ENV, "aggregator": {"checkpoint": {"storageSize": size}}}) == [f"spec.aggregator.checkpoint.storageSize: {message}"]


def test_a_checkpoint_claim_size_is_kept() -> None:
    assert parse_spec({**ENV, "aggregator": {"checkpoint": {"storageSize": "10Gi"}}}).aggregator.checkpoint.storage_size == "10Gi"


def test_a_bad_quantity_is_reported_once_by_the_schema() -> None:
    assert _errors({**ENV, "workers": {"resources": {"limits": {"cpu": "lots"}}}}) == [
        "spec.workers.resources.limits.cpu: must be a Kubernetes quantity such as 500m, 2 or 1Gi, got 'lots'"
    ]


# --------------------------------------------------------------------------- environment.id


@pytest.mark.parametrize("env_id", ["Hälf-v5", "HalfCheetah-v\u0665", "müd:Cls", "mod:Klaß", "Hopper-v5\n", "naméspace/Hopper-v5"])
def test_an_environment_id_the_api_servers_re2_pattern_refuses_is_refused(env_id: str) -> None:
    errors = _errors({"environment": {"id": env_id}})
    assert errors == [f"spec.environment.id: must be a Gymnasium id (Name-vN, such as HalfCheetah-v5), module:Class or module:Name-vN, got {env_id!r}"]


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "ALE/Pong-v5", "my_pkg.envs:MyEnv", "my_pkg:My-Env-v0", "a.b:ns/Task-v12", "Walker2d-v4"])
def test_ascii_environment_ids_are_accepted(env_id: str) -> None:
    assert parse_spec({"environment": {"id": env_id}}).environment.id == env_id


# --------------------------------------------------------------------------- the document


def _doc(**extra: Any) -> dict[str, Any]:
    meta = {"name": "job", **extra.pop("metadata", {})}
    return {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": meta, "spec": ENV, **extra}


def _doc_errors(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_job(doc)
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_doc(foo=1), "foo: unknown field; an ESENASJob has only apiVersion, kind, metadata, spec and status"),
        (_doc(Spec={}), "Spec: unknown field"),
        (_doc(metadata={"foo": 1}), "metadata.foo: unknown field; an ObjectMeta has"),
        (_doc(metadata={"namespace": 5}), "metadata.namespace: must be a string, got integer 5"),
        (_doc(metadata={"namespace": "Bad_NS"}), "metadata.namespace: must be a DNS-1123 label"),
        (_doc(metadata={"namespace": "x" * 64}), "metadata.namespace: must be a DNS-1123 label"),
        (_doc(metadata={"labels": {"bad key!": "x"}}), "metadata.labels.bad key!: is not a valid key"),
        (_doc(metadata={"labels": {"team": 5}}), "metadata.labels.team: must be a string (quote it), got integer 5"),
        (_doc(metadata={"labels": {"team": "not ok"}}), "metadata.labels.team: must be a label value"),
        (_doc(metadata={"labels": ["a"]}), "metadata.labels: must be an object, got list"),
        (_doc(metadata={"annotations": {"note": True}}), "metadata.annotations.note: must be a string (quote it), got boolean True"),
        (_doc(metadata={"annotations": {"a": "x" * (256 * 1024)}}), "metadata.annotations: is 262145 bytes; Kubernetes allows at most 262144"),
        (_doc(metadata={"finalizers": "x"}), "metadata.finalizers: must be a list"),
        ({**_doc(), "metadata": 5}, "metadata: must be an object, got integer"),
    ],
)
def test_what_kubectl_apply_refuses_outside_the_spec_is_refused(doc: dict[str, Any], message: str) -> None:
    errors = _doc_errors(doc)
    assert any(e.startswith(message) for e in errors), errors


def test_status_and_the_server_set_metadata_are_accepted_and_ignored() -> None:
    """kubectl ignores status on apply (a status subresource); `kubectl get -o yaml` output has server-set metadata."""
    doc = _doc(
        status={"phase": "Running", "anything": 1},
        metadata={
            "namespace": "team-a", "labels": {"app.kubernetes.io/name": "esenas", "tier": ""}, "annotations": {"Note": "free text!"},
            "uid": "0b7c", "resourceVersion": "42", "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"manager": "kubectl"}], "finalizers": ["esenas.dev/cleanup"], "generateName": "job-",
        },
    )
    job = load_job(doc)
    assert (job.name, job.namespace) == ("job", "team-a")


def test_a_null_or_absent_namespace_is_the_default() -> None:
    assert load_job(_doc(metadata={"namespace": None})).namespace == "default"
    assert load_job(_doc(metadata={"namespace": ""})).namespace == "default"
    assert load_job(_doc()).namespace == "default"


def test_a_quantity_the_schema_refused_leaves_the_others_checked() -> None:
    assert _errors({**ENV, "workers": {"resources": {"limits": {"cpu": "lots", "memory": "-1Gi"}}}}) == [
        "spec.workers.resources.limits.cpu: must be a Kubernetes quantity such as 500m, 2 or 1Gi, got 'lots'",
        "spec.workers.resources.limits.memory: must not be negative, got '-1Gi'",
    ]
