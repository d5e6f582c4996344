"""Unit tests of the runner's pure rules: pod spec -> process launch, image entrypoints, Service
names, and the Deployment controller's pods and status."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.simcluster import images
from tests.simcluster.netproxy import service_name, split_host_port
from tests.simcluster.podspec import (
    PodConfigError,
    build_launch,
    container_env,
    expand,
    path_mapper,
    resolve_target_port,
    rewrite_port_args,
)
from tests.simcluster.workloads import HASH_LABEL, build_pod, deployment_status, template_hash

POD: dict[str, Any] = {"metadata": {"name": "p-1", "namespace": "ns", "uid": "u1", "labels": {"a": "b"}}, "spec": {}}


def lookup_from(objs: dict[tuple[str, str], dict[str, Any]]) -> Any:
    return lambda kind, name: objs.get((kind, name))


def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "x"}
    assert expand("$(A)/$(B)/$$(A)", env) == "x/$(B)/$(A)"


def test_env_sources_and_order() -> None:
    objs = {("ConfigMap", "cm"): {"data": {"k": "v", "other": "o"}},
            ("Secret", "s"): {"data": {"t": base64.b64encode(b"tok").decode()}}}
    container = {
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}, {"secretRef": {"name": "missing", "optional": True}}],
        "env": [
            {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
            {"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}},
            {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['a']"}}},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "s", "key": "nope", "optional": True}}},
            {"name": "E", "value": "$(K)-$(T)"},
        ],
    }
    env = container_env(POD, container, lookup_from(objs))
    assert env == {"CM_k": "v", "CM_other": "o", "K": "v", "T": "tok", "N": "b", "E": "v-tok"}


def test_missing_reference_waits_and_unsupported_field_fails() -> None:
    with pytest.raises(PodConfigError) as err:
        container_env(POD, {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}, lookup_from({}))
    assert err.value.retry and "env X" in err.value.message
    with pytest.raises(PodConfigError) as err:
        container_env(POD, {"env": [{"name": "Y", "valueFrom": {"fieldRef": {"fieldPath": "spec.weird"}}}]}, lookup_from({}))
    assert not err.value.retry and "spec.weird" in err.value.message


def test_paths_under_mounts_are_rewritten_at_boundaries_only() -> None:
    rw = path_mapper({"/etc/esenas": "/L/job", "/etc/esenas/deep": "/L/deep", "/": "/L/root"})
    assert rw("/etc/esenas/job.yaml") == "/L/job/job.yaml"
    assert rw("/etc/esenas/deep/x") == "/L/deep/x"
    assert rw("/etc/esenasX") == "/L/root/etc/esenasX"
    assert rw("--job=/etc/esenas/job.yaml") == "--job=/L/job/job.yaml"
    assert rw("relative/etc/esenas") == "relative/etc/esenas"
    assert path_mapper({"/etc/esenas": "/L"})("/etc/esenasX") == "/etc/esenasX"


def test_only_port_flags_with_container_ports_are_rewritten() -> None:
    ports = {50051: 41000, 9090: 41001}
    args = ["--port", "50051", "--http-port=9090", "--workers", "50051", "--port", "1234", "50051"]
    assert rewrite_port_args(args, ports) == ["--port", "41000", "--http-port=41001", "--workers", "50051", "--port", "1234", "50051"]


def test_target_port_by_name_or_number() -> None:
    pod = {"spec": {"containers": [{"ports": [{"name": "grpc", "containerPort": 50051}]}]}}
    assert resolve_target_port(pod, "grpc") == 50051
    assert resolve_target_port(pod, 50051) == 50051
    assert resolve_target_port(pod, "http") is None


def test_operator_aggregator_pod_maps_to_a_local_launch() -> None:
    """The operator's real aggregator container: every container path and port is mapped."""
    from esenas.spec import load_job
    from esenas_operator import builders
    from esenas_operator.settings import Settings

    body = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob",
            "metadata": {"name": "j", "namespace": "ns", "uid": "u"}, "spec": {"environment": {"id": "InvertedPendulum-v5"}}}
    deploy = builders.build_aggregator_deployment(body, load_job(body), Settings())
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["mountPath"]: f"/L/{m['name']}" for m in container["volumeMounts"]}
    launch = build_launch(POD, container, images.entrypoint(container["image"]), lookup_from({}), mounts,
                          {50051: 41000, 9090: 41001}, {"PATH": "/bin"})
    assert launch.argv == ["esenas-aggregator", "--job", "/L/job/job.yaml", "--checkpoint-dir", "/L/checkpoints",
                           "--token-file", "/L/token/token", "--tls-cert-file", "/L/token/tls.crt",
                           "--tls-key-file", "/L/token/tls.key", "--port", "41000", "--http-port", "41001"]
    assert launch.cwd == "/L/tmp" and launch.env["HOSTNAME"] == "p-1"


def test_image_entrypoints_come_from_the_dockerfiles() -> None:
    assert images.repository("ghcr.io/esenas-fleet/worker:0.1.0@sha256:ab") == "worker"
    assert images.entrypoint("ghcr.io/x/worker:1") == ["esenas-worker"]
    assert images.entrypoint("ghcr.io/x/aggregator") == ["esenas-aggregator"]
    assert images.entrypoint("busybox") == []
    assert images.dockerfile_entrypoint("FROM x\nENTRYPOINT run me\n") == ["/bin/sh", "-c", "run me"]


@pytest.mark.parametrize(("host", "expected"), [
    ("j-aggregator.default.svc", ("j-aggregator", "default")),
    ("j-aggregator.default.svc.cluster.local.", ("j-aggregator", "default")),
    ("j-aggregator.default", ("j-aggregator", "default")),
    ("127.0.0.1", None),
    ("example.com.evil.svc.x", None),
])
def test_service_names(host: str, expected: tuple[str, str] | None) -> None:
    assert service_name(host) == expected


def test_split_host_port() -> None:
    assert split_host_port("a.b.svc:50051", 80) == ("a.b.svc", 50051)
    assert split_host_port("a.b.svc", 80) == ("a.b.svc", 80)
    assert split_host_port("[::1]:9", 80) == ("::1", 9)


def test_deployment_pods_and_status() -> None:
    deploy: dict[str, Any] = {"metadata": {"name": "d", "namespace": "ns", "uid": "du", "generation": 4},
              "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}}}
    h = template_hash(deploy["spec"]["template"])
    pod = build_pod(deploy, h)
    assert pod["metadata"]["labels"] == {"app": "x", HASH_LABEL: h}
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "du" and pod["metadata"]["name"].startswith(f"d-{h}-")
    assert pod["spec"]["restartPolicy"] == "Always"
    ready = {**pod, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    old = {**pod, "metadata": {**pod["metadata"], "labels": {"app": "x", HASH_LABEL: "old"}}}
    s = deployment_status(deploy, [ready, old], h)
    assert (s["observedGeneration"], s["replicas"], s["updatedReplicas"], s["readyReplicas"]) == (4, 2, 1, 1)
    assert s["conditions"][0] == {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}
