"""The pure builders: names and labels per docs/contracts.md, restricted pods, valid Kubernetes objects."""

from __future__ import annotations

import base64
import json
from typing import Any

import kubernetes_validate
import pytest
import yaml
from esenas.run_summary import HISTORY_FILE, POLICY_FILE, SUMMARY_FILE
from esenas.spec import load_job
from esenas_operator import builders, names, relays
from esenas_operator.results import build_result
from esenas_operator.settings import Settings

VERSIONS = ["1.29", "1.33", "1.37"]
SETTINGS = Settings()
RESULT_FILES = {SUMMARY_FILE: json.dumps({"iterations": 3}), POLICY_FILE: json.dumps({"weights": [1.0]}), HISTORY_FILE: "[]"}


def body(name: str = "cheetah", **spec: Any) -> dict[str, Any]:
    full = {"environment": {"id": "HalfCheetah-v5"}, **spec}
    return {
        "apiVersion": "esenas.dev/v1alpha1",
        "kind": "ESENASJob",
        "metadata": {"name": name, "namespace": "rl", "uid": "0b7c-uid", "generation": 1},
        "spec": full,
    }


def all_objects(b: dict[str, Any]) -> list[dict[str, Any]]:
    job = load_job(b)
    return [
        *builders.build_children(b, job, SETTINGS, service_monitor=True),
        builders.build_token_secret(b, builders.new_token(), builders.new_tls(b)),
        *build_result(b, RESULT_FILES, complete=True)[0],  # the result, written at the end
    ]


FULL = body(
    workers={
        "replicas": 2500,
        "shardSize": 1000,
        "resources": {"requests": {"cpu": "500m"}},
        "nodeSelector": {"pool": "cpu"},
        "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
        "priorityClassName": "batch",
    },
    aggregator={"checkpoint": {"storageSize": "2Gi", "storageClassName": "fast"}},
    relays={"replicas": 3},
)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_built_object_passes_strict_validation(version: str) -> None:
    for b in (body(), FULL):
        for obj in all_objects(b):
            if obj["kind"] == "ServiceMonitor":
                continue  # not a built-in kind; kubernetes-validate has no schema for it
            kubernetes_validate.validate(obj, version, strict=True)


def test_names_labels_and_owner_on_every_child() -> None:
    objs = all_objects(FULL)
    children = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert children == {
        ("ConfigMap", "cheetah-spec"),
        ("Secret", "cheetah-token"),
        ("PersistentVolumeClaim", "cheetah-checkpoints"),
        ("Deployment", "cheetah-aggregator"),
        ("Service", "cheetah-aggregator"),
        ("NetworkPolicy", "cheetah-aggregator"),
        ("ServiceMonitor", "cheetah-aggregator"),
        ("Deployment", "cheetah-workers-0"),
        ("Deployment", "cheetah-workers-1"),
        ("Deployment", "cheetah-workers-2"),
        ("Deployment", "cheetah-relays"),
        ("Service", "cheetah-relays"),
        ("NetworkPolicy", "cheetah-relays"),
        ("ConfigMap", "cheetah-result"),
        ("ConfigMap", "cheetah-result-0"),
    }
    for o in objs:
        labels = o["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "esenas"
        assert labels["app.kubernetes.io/instance"] == "cheetah"
        assert labels["app.kubernetes.io/managed-by"] == "esenas-operator"
        assert labels["esenas.dev/job"] == "cheetah"
        assert labels["app.kubernetes.io/component"] in {"aggregator", "relay", "worker", "spec", "token", "result"}
        assert o["metadata"]["namespace"] == "rl"
        (owner,) = o["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "esenas.dev/v1alpha1",
            "kind": "ESENASJob",
            "name": "cheetah",
            "uid": "0b7c-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }


@pytest.mark.parametrize(
    ("replicas", "shard", "sizes"),
    [(0, 1000, [0]), (1, 1000, [1]), (1000, 1000, [1000]), (1001, 1000, [1000, 1]), (10_000, 1000, [1000] * 10), (7, 3, [3, 3, 1])],
)
def test_shard_sizes(replicas: int, shard: int, sizes: list[int]) -> None:
    assert builders.shard_sizes(replicas, shard) == sizes


def test_fleet_sums_to_replicas_and_dials_the_service() -> None:
    job = load_job(FULL)
    fleet = builders.build_worker_fleet(FULL, job, SETTINGS)
    assert [d["spec"]["replicas"] for d in fleet] == [1000, 1000, 500]
    for i, d in enumerate(fleet):
        pod = d["spec"]["template"]
        assert d["spec"]["selector"]["matchLabels"] == {"esenas.dev/job": "cheetah", "app.kubernetes.io/component": "worker", "esenas.dev/shard": str(i)}
        assert pod["metadata"]["labels"]["esenas.dev/shard"] == str(i)
        (c,) = pod["spec"]["containers"]
        assert {"name": "ESENAS_AGGREGATOR", "value": "cheetah-relays.rl.svc:50051"} in c["env"]  # FULL has relays
        assert c["command"] == ["esenas-worker"]
        assert c["resources"] == {"requests": {"cpu": "500m"}}
        assert pod["spec"]["nodeSelector"] == {"pool": "cpu"}
        assert pod["spec"]["priorityClassName"] == "batch"
    direct = load_job(body(workers={"replicas": 2}))
    (c,) = builders.build_worker_fleet(body(), direct, SETTINGS)[0]["spec"]["template"]["spec"]["containers"]
    assert {"name": "ESENAS_AGGREGATOR", "value": "cheetah-aggregator.rl.svc:50051"} in c["env"]
    suspended = load_job(body(workers={"replicas": 2500}, suspend=True))
    assert [d["spec"]["replicas"] for d in builders.build_worker_fleet(FULL, suspended, SETTINGS)] == [0, 0, 0]


def _pods(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o["spec"]["template"]["spec"] for o in objs if o["kind"] == "Deployment"]


def test_pods_follow_the_restricted_profile() -> None:
    pods = _pods(all_objects(FULL))
    assert len(pods) == 5
    for pod in pods:
        assert pod["automountServiceAccountToken"] is False
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == names.RUN_AS
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            csc = c["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False
            assert csc["capabilities"] == {"drop": ["ALL"]}
            assert csc["readOnlyRootFilesystem"] is True
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert mounts["/tmp"] == "tmp" and mounts["/etc/esenas"] == "job" and mounts["/var/run/esenas"] == "token"
            assert c["resources"]["requests"]


def test_aggregator_deployment() -> None:
    job = load_job(FULL)
    d = builders.build_aggregator_deployment(FULL, job, SETTINGS)
    assert d["spec"]["replicas"] == 1
    assert d["spec"]["strategy"] == {"type": "Recreate"}
    (c,) = d["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": 50051, "http": 9090}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["command"] + c["args"] == [
        "esenas-aggregator", "--job", "/etc/esenas/job.yaml", "--checkpoint-dir", "/var/lib/esenas",
        "--token-file", "/var/run/esenas/token", "--tls-cert-file", "/var/run/esenas/tls.crt",
        "--tls-key-file", "/var/run/esenas/tls.key", "--port", "50051", "--http-port", "9090",
        "--max-lease-items", "16384",  # FULL has relays
    ]
    volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
    assert volumes["checkpoints"] == {"name": "checkpoints", "persistentVolumeClaim": {"claimName": "cheetah-checkpoints"}}
    plain = body()
    plain_d = builders.build_aggregator_deployment(plain, load_job(plain), SETTINGS)
    assert {"name": "checkpoints", "emptyDir": {}} in plain_d["spec"]["template"]["spec"]["volumes"]
    assert builders.build_checkpoint_claim(plain, load_job(plain)) is None
    assert builders.build_aggregator_deployment(FULL, job, SETTINGS, stopped=True)["spec"]["replicas"] == 0


def test_service_network_policy_and_monitor() -> None:
    job = load_job(FULL)
    svc = builders.build_aggregator_service(FULL, job)
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"grpc": 50051, "http": 9090}
    assert svc["spec"]["selector"] == {"esenas.dev/job": "cheetah", "app.kubernetes.io/component": "aggregator"}
    np = builders.build_network_policy(FULL, job, Settings())
    grpc_rule, http_rule = np["spec"]["ingress"]
    assert grpc_rule["from"] == [
        {"podSelector": {"matchLabels": {"esenas.dev/job": "cheetah", "app.kubernetes.io/component": component}}}
        for component in ("worker", "relay")
    ]
    assert grpc_rule["ports"] == [{"protocol": "TCP", "port": 50051}]
    assert "from" not in http_rule and http_rule["ports"] == [{"protocol": "TCP", "port": 9090}]
    sm = builders.build_service_monitor(FULL, job, SETTINGS.job_monitoring)
    assert sm["spec"]["endpoints"][0]["port"] == "http"
    kinds = [o["kind"] for o in builders.build_children(FULL, job, SETTINGS, service_monitor=False)]
    assert "ServiceMonitor" not in kinds


def test_spec_configmap_holds_the_whole_job_and_token_is_random() -> None:
    cm = builders.build_spec_configmap(FULL)
    doc = yaml.safe_load(cm["data"]["job.yaml"])
    assert doc["metadata"] == {"name": "cheetah", "namespace": "rl"}
    assert load_job(doc).spec == load_job(FULL).spec
    t1, t2 = builders.new_token(), builders.new_token()
    assert t1 != t2 and len(base64.urlsafe_b64decode(t1 + "=")) == 32
    secret = builders.build_token_secret(FULL, t1, builders.new_tls(FULL))
    assert base64.b64decode(secret["data"]["token"]).decode() == t1


def test_tls_the_aggregator_gets_the_key_workers_only_the_ca() -> None:
    from cryptography import x509

    job = load_job(FULL)
    secret = builders.build_token_secret(FULL, builders.new_token(), builders.new_tls(FULL))
    assert sorted(secret["data"]) == ["ca.crt", "tls.crt", "tls.key", "token"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    dns = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names.aggregator_address("cheetah", "rl").rsplit(":", 1)[0] in dns  # the name relays dial
    assert names.worker_address("cheetah", "rl", 3).rsplit(":", 1)[0] in dns  # the name workers dial
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    cert.verify_directly_issued_by(ca)

    agg = builders.build_aggregator_deployment(FULL, job, SETTINGS)["spec"]["template"]["spec"]
    fleet = builders.build_worker_fleet(FULL, job, SETTINGS)[0]["spec"]["template"]["spec"]

    def secret_keys(pod: dict[str, Any]) -> list[str]:
        vol = next(v for v in pod["volumes"] if "secret" in v)
        return [i["key"] for i in vol["secret"]["items"]]

    assert secret_keys(agg) == ["token", "tls.crt", "tls.key"]
    assert secret_keys(fleet) == ["token", "ca.crt"]  # never the private key
    args = agg["containers"][0]["args"]
    assert args[args.index("--tls-cert-file") + 1] == names.TLS_CERT_FILE and args[args.index("--tls-key-file") + 1] == names.TLS_KEY_FILE
    wargs = fleet["containers"][0]["args"]
    assert wargs[wargs.index("--tls-ca-file") + 1] == names.TLS_CA_FILE
    # The kubelet's gRPC probe cannot speak TLS: the probes use the HTTP port.
    assert agg["containers"][0]["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_object_count_does_not_grow_with_replicas() -> None:
    small = body(workers={"replicas": 10})
    big = body(workers={"replicas": 10_000})
    n_small = len(builders.build_children(small, load_job(small), SETTINGS, service_monitor=True))
    n_big = len(builders.build_children(big, load_job(big), SETTINGS, service_monitor=True))
    assert n_big - n_small == 9  # ten shards instead of one


def test_settings_from_env() -> None:
    s = Settings.from_env({"ESENAS_WORKER_IMAGE": "w:1", "ESENAS_AGGREGATOR_URL_TEMPLATE": "http://127.0.0.1:1/{namespace}/{name}"})
    assert s.worker_image == "w:1"
    assert s.aggregator_url("j", "ns") == "http://127.0.0.1:1/ns/j"
    assert Settings().aggregator_url("j", "ns") == "http://j-aggregator.ns.svc:9090"
    assert Settings.from_env({}) == Settings()


def test_relays_serve_with_the_key_and_stop_with_the_job() -> None:
    job = load_job(FULL)
    relay = relays.build_relay_deployment(FULL, job, SETTINGS)
    pod = relay["spec"]["template"]["spec"]
    vol = next(v for v in pod["volumes"] if "secret" in v)
    assert [i["key"] for i in vol["secret"]["items"]] == ["token", "ca.crt", "tls.crt", "tls.key"]
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    assert relay["spec"]["replicas"] == 3
    assert relays.build_relay_deployment(FULL, job, SETTINGS, stopped=True)["spec"]["replicas"] == 0
    suspended = body(relays={"replicas": 3}, suspend=True)
    assert relays.build_relay_deployment(suspended, load_job(suspended), SETTINGS)["spec"]["replicas"] == 0
    assert relays.build_relays(body(), load_job(body()), SETTINGS) == []


def test_relays_sized_per_worker_follow_the_fleet_without_flipping_the_workers_address() -> None:
    def objects(replicas: int) -> dict[tuple[str, str], Any]:
        b = body(workers={"replicas": replicas}, relays={"workersPerRelay": 500})
        return {(o["kind"], o["metadata"]["name"]): o for o in all_objects(b)}

    small, big = objects(10), objects(10_000)
    assert small[("Deployment", "cheetah-relays")]["spec"]["replicas"] == 1  # never 0: see RelaysSpec.pods
    assert big[("Deployment", "cheetah-relays")]["spec"]["replicas"] == 20
    for objs in (small, big):  # the same address and lease cap at every size: scaling rolls no pod
        env = objs[("Deployment", "cheetah-workers-0")]["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "ESENAS_AGGREGATOR", "value": "cheetah-relays.rl.svc:50051"} in env
        assert objs[("Deployment", "cheetah-aggregator")]["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == [
            "--max-lease-items", "16384"]
