"""Pure builders of a job's children: each takes the job and returns plain Kubernetes dicts.

Handlers only create or patch what these return. Every object is adopted by the job (owner
reference) and every pod follows the restricted Pod Security profile.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
from collections.abc import Mapping
from typing import Any

import yaml
from esenas.spec import API_VERSION, KIND, Job
from esenas_api import tls
from esenas_api.tls import TLSMaterial

from esenas_operator import claims, names, relays, services, terms
from esenas_operator.monitoring import JobMonitoring
from esenas_operator.pods import (
    DEFAULT_AGGREGATOR_RESOURCES,
    DEFAULT_WORKER_RESOURCES,
    common_mounts,
    common_volumes,
    container_security,
    pod_resources,
    pod_security,
)
from esenas_operator.settings import Settings

Obj = dict[str, Any]

_meta = names.child_meta


def job_document(body: Mapping[str, Any]) -> Obj:
    """The whole ESENASJob as the pods read it: apiVersion, kind, name, namespace and spec."""
    meta = body["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": body.get("spec", {}),
    }


def build_spec_configmap(body: Mapping[str, Any]) -> Obj:
    name = body["metadata"]["name"]
    text = yaml.safe_dump(job_document(body), sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(body, names.spec_configmap(name), "spec"),
        "data": {"job.yaml": text},
    }


def new_token() -> str:
    """32 random bytes, url-safe base64: the workers' bearer token."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def new_tls(body: Mapping[str, Any]) -> TLSMaterial:
    """A fresh CA and aggregator certificate for the job's Service names (random: made once)."""
    meta = body["metadata"]
    return tls.issue(names.aggregator(meta["name"]), tls.server_names(meta["name"], meta["namespace"]))


def build_token_secret(body: Mapping[str, Any], token: str, material: TLSMaterial) -> Obj:
    """The job's Secret: the workers' bearer token and the TLS files of the aggregator's port."""
    name = body["metadata"]["name"]
    data = {"token": token.encode(), **material.as_files()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(body, names.token_secret(name), "token"),
        "type": "Opaque",
        "immutable": True,
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def build_checkpoint_claim(body: Mapping[str, Any], job: Job) -> Obj | None:
    """The checkpoint PVC, or None when the spec asks for an emptyDir."""
    ck = job.spec.aggregator.checkpoint
    if ck.storage_size is None:
        return None
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": ck.storage_size}}}
    if ck.storage_class_name:
        spec["storageClassName"] = ck.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(body, names.checkpoint_claim(job.name), "aggregator"),
        "spec": spec,
    }


def aggregator_replicas(job: Job, stopped: bool = False) -> int:
    """1 while the job runs; 0 when suspended or finished (SIGTERM makes it checkpoint first)."""
    return 0 if stopped or job.spec.suspend else 1


def build_aggregator_deployment(body: Mapping[str, Any], job: Job, settings: Settings, stopped: bool = False) -> Obj:
    name = job.name
    ck = job.spec.aggregator.checkpoint
    checkpoint_volume: Obj = (
        {"name": "checkpoints", "persistentVolumeClaim": {"claimName": names.checkpoint_claim(name)}}
        if ck.storage_size is not None
        else {"name": "checkpoints", "emptyDir": {}}
    )
    probe = services.health_probe()
    container: Obj = {
        "name": "aggregator",
        "image": job.spec.aggregator.image or settings.aggregator_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["esenas-aggregator"],
        "args": [
            "--job", names.JOB_FILE,
            "--checkpoint-dir", names.CHECKPOINT_DIR,
            "--token-file", names.TOKEN_FILE,
            "--tls-cert-file", names.TLS_CERT_FILE,
            "--tls-key-file", names.TLS_KEY_FILE,
            "--port", str(names.GRPC_PORT),
            "--http-port", str(names.HTTP_PORT),
            *relays.aggregator_args(job),
        ],
        "ports": services.server_ports(),
        # Restoring a large checkpoint may take a while: the startup probe covers it.
        "startupProbe": {**probe, "failureThreshold": 30},
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        "resources": pod_resources(job.spec.aggregator.resources, DEFAULT_AGGREGATOR_RESOURCES),
        # A crash (an environment that does not import, say) leaves its log tail as the
        # termination message, which the operator quotes in the job's Failed condition.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security(),
        "volumeMounts": [*common_mounts(), {"name": "checkpoints", "mountPath": names.CHECKPOINT_DIR}],
    }
    meta = _meta(body, names.aggregator(name), "aggregator")
    # What the checkpoint volume was made with, for a refused edit of it after a restart (claims.py),
    # and the terms the status timer enforces, for a job whose edit stands refused then (terms.py).
    meta["annotations"] = {claims.ANNOTATION: claims.annotation(job), terms.ANNOTATION: terms.annotation(job)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": aggregator_replicas(job, stopped),
            # Recreate: two aggregators must never share a checkpoint or split the fleet.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": names.selector(name, "aggregator")},
            "template": {
                "metadata": {"labels": names.labels(name, "aggregator")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    # Time to write a checkpoint on SIGTERM (suspend, eviction).
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": [*common_volumes(name, ("token", tls.CERT_KEY, tls.KEY_KEY)), checkpoint_volume],
                },
            },
        },
    }


def build_aggregator_service(body: Mapping[str, Any], job: Job) -> Obj:
    return services.grpc_service(body, job.name, names.aggregator(job.name), "aggregator")


def shard_sizes(replicas: int, shard_size: int) -> list[int]:
    """Pods per worker Deployment: full shards, then the remainder, and always at least one shard.

    Filling shards (rather than balancing them) means a change of replicas touches only the last
    shards, so scaling 1000 -> 1001 adds one pod instead of moving hundreds.
    """
    count = max(1, math.ceil(replicas / shard_size))
    sizes = [shard_size] * (count - 1)
    sizes.append(replicas - shard_size * (count - 1))
    return sizes


def build_worker_fleet(body: Mapping[str, Any], job: Job, settings: Settings, stopped: bool = False) -> list[Obj]:
    """The worker Deployments J-workers-0..n-1; their replicas sum to spec.workers.replicas."""
    w = job.spec.workers
    name = job.name
    address = names.worker_address(name, job.namespace, relays.relay_pods(job))
    container: Obj = {
        "name": "worker",
        "image": w.image or settings.worker_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["esenas-worker"],
        "args": [
            "--job", names.JOB_FILE, "--aggregator", address, "--token-file", names.TOKEN_FILE, "--tls-ca-file", names.TLS_CA_FILE,
        ],
        "env": [{"name": "ESENAS_AGGREGATOR", "value": address}],
        "resources": pod_resources(w.resources, DEFAULT_WORKER_RESOURCES),
        "securityContext": container_security(),
        "volumeMounts": common_mounts(),
    }
    pod: Obj = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        # Unfinished work is re-issued by the aggregator: a worker need not linger.
        "terminationGracePeriodSeconds": 10,
        "securityContext": pod_security(),
        "containers": [container],
        "volumes": common_volumes(name, ("token", tls.CA_KEY)),
    }
    if w.node_selector:
        pod["nodeSelector"] = dict(w.node_selector)
    if w.tolerations:
        pod["tolerations"] = [dict(t) for t in w.tolerations]
    if w.affinity:
        pod["affinity"] = json.loads(json.dumps(dict(w.affinity)))
    if w.priority_class_name:
        pod["priorityClassName"] = w.priority_class_name
    fleet = []
    for i, size in enumerate(shard_sizes(w.replicas, w.shard_size)):
        sel = {**names.selector(name, "worker"), names.SHARD_LABEL: str(i)}
        labels = {**names.labels(name, "worker"), names.SHARD_LABEL: str(i)}
        meta = _meta(body, names.worker_shard(name, i), "worker")
        meta["labels"] = labels
        fleet.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": meta,
                "spec": {
                    "replicas": 0 if stopped or job.spec.suspend else size,
                    "selector": {"matchLabels": sel},
                    # Many small surges: a rollout of a 1000-pod shard never doubles it.
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "10%", "maxUnavailable": "10%"}},
                    "template": {"metadata": {"labels": labels}, "spec": json.loads(json.dumps(pod))},
                },
            }
        )
    return fleet


def build_network_policy(body: Mapping[str, Any], job: Job, settings: Settings) -> Obj:
    """Only this job's workers and relays reach gRPC; the HTTP port as the chart's jobNetworkPolicy.httpFrom says."""
    return services.grpc_network_policy(body, job.name, names.aggregator(job.name), "aggregator", ("worker", "relay"), settings.http_access)


def build_service_monitor(body: Mapping[str, Any], job: Job, m: JobMonitoring) -> Obj:
    """Labels and interval come from the chart (monitoring.py); our own labels win over extra ones."""
    meta = _meta(body, names.aggregator(job.name), "aggregator")
    meta["labels"] = {**m.labels, **meta["labels"]}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": names.selector(job.name, "aggregator")},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": m.interval}],
        },
    }


def build_children(
    body: Mapping[str, Any], job: Job, settings: Settings, *, service_monitor: bool, stopped: bool = False,
) -> list[Obj]:
    """Every child except the token Secret (random, made once) and the result (made at the end)."""
    objs: list[Obj] = [build_spec_configmap(body)]
    claim = build_checkpoint_claim(body, job)
    if claim is not None:
        objs.append(claim)
    objs += [
        build_aggregator_deployment(body, job, settings, stopped),
        build_aggregator_service(body, job),
        build_network_policy(body, job, settings),
        *relays.build_relays(body, job, settings, stopped),
        *build_worker_fleet(body, job, settings, stopped),
    ]
    m = settings.job_monitoring
    if service_monitor and m.enabled:
        objs.append(build_service_monitor(body, job, m))
    return objs
