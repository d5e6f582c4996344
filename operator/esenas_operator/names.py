"""Names, labels, ports and mount paths of a job's children, exactly as docs/contracts.md lists them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

GRPC_PORT: Final = 50051
HTTP_PORT: Final = 9090
JOB_DIR: Final = "/etc/esenas"
JOB_FILE: Final = "/etc/esenas/job.yaml"
TOKEN_DIR: Final = "/var/run/esenas"
TOKEN_FILE: Final = "/var/run/esenas/token"
#: The job's TLS files, from the same Secret: the aggregator gets the certificate and key,
#: workers only the CA (each pod's volume projects just its own keys).
TLS_CERT_FILE: Final = "/var/run/esenas/tls.crt"
TLS_KEY_FILE: Final = "/var/run/esenas/tls.key"
TLS_CA_FILE: Final = "/var/run/esenas/ca.crt"
CHECKPOINT_DIR: Final = "/var/lib/esenas"
#: The images' fixed non-root uid (see */Dockerfile); runAsNonRoot needs it numeric.
RUN_AS: Final = 10001
MANAGER: Final = "esenas-operator"
JOB_LABEL: Final = "esenas.dev/job"
SHARD_LABEL: Final = "esenas.dev/shard"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"


def spec_configmap(job: str) -> str:
    return f"{job}-spec"


def token_secret(job: str) -> str:
    return f"{job}-token"


def aggregator(job: str) -> str:
    """The aggregator Deployment, Service, NetworkPolicy and ServiceMonitor share this name."""
    return f"{job}-aggregator"


def relays(job: str) -> str:
    """The relay Deployment, Service and NetworkPolicy share this name (docs/relay-tier.md)."""
    return f"{job}-relays"


def worker_shard(job: str, shard: int) -> str:
    return f"{job}-workers-{shard}"


def checkpoint_claim(job: str) -> str:
    return f"{job}-checkpoints"


def result_configmap(job: str) -> str:
    return f"{job}-result"


def aggregator_address(job: str, namespace: str) -> str:
    """host:port the workers dial (the relays, when the job has some)."""
    return f"{aggregator(job)}.{namespace}.svc:{GRPC_PORT}"


def worker_address(job: str, namespace: str, relay_pods: int) -> str:
    """host:port the workers dial: the relays' Service when the job has relays, else the aggregator's."""
    return f"{relays(job)}.{namespace}.svc:{GRPC_PORT}" if relay_pods else aggregator_address(job, namespace)


def labels(job: str, component: str) -> dict[str, str]:
    """The labels every child carries."""
    return {
        "app.kubernetes.io/name": "esenas",
        "app.kubernetes.io/instance": job,
        COMPONENT_LABEL: component,
        "app.kubernetes.io/managed-by": MANAGER,
        JOB_LABEL: job,
    }


def selector(job: str, component: str) -> dict[str, str]:
    """The stable subset of labels used in selectors (Deployment selectors are immutable)."""
    return {JOB_LABEL: job, COMPONENT_LABEL: component}


def monitor_selector_string(job: str) -> str:
    """Label selector of the job's ServiceMonitor, with the operator's own mark (a user's
    ServiceMonitor for the same job, without ``managed-by: esenas-operator``, never matches)."""
    return _selector_string({**selector(job, "aggregator"), "app.kubernetes.io/managed-by": MANAGER})


def worker_selector_string(job: str) -> str:
    """Label selector of all worker pods of a job, for the scale subresource."""
    return _selector_string(selector(job, "worker"))


def job_selector_string(job: str) -> str:
    """Label selector of every child a job's operator manages."""
    return _selector_string({JOB_LABEL: job, "app.kubernetes.io/managed-by": MANAGER})


def _selector_string(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    """Adopts a child by the job, so deleting the job deletes it (the garbage collector cascades)."""
    meta = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion", "esenas.dev/v1alpha1"),
        "kind": body.get("kind", "ESENASJob"),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_meta(body: Mapping[str, Any], name: str, component: str) -> dict[str, Any]:
    """Metadata of a child: its name, the job's namespace and labels, adopted by the job."""
    return {
        "name": name,
        "namespace": body["metadata"]["namespace"],
        "labels": labels(body["metadata"]["name"], component),
        "ownerReferences": [owner_reference(body)],
    }
