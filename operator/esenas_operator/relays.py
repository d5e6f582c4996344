"""The relay tier's children (docs/relay-tier.md): Deployment, Service and NetworkPolicy ``J-relays``.

Present only while the job has relay pods: ``spec.relays.replicas`` > 0, or ``workersPerRelay``
set (then one per that many workers, at least one, so the tier follows ``kubectl scale``). The
relays run the aggregator image's ``esenas-relay``; the workers dial their Service instead of the aggregator's, and the aggregator
gets ``--max-lease-items`` so that one lease holds a relay's share of an iteration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from esenas.spec import Job
from esenas_api import tls

from esenas_operator import names, services
from esenas_operator.pods import (
    DEFAULT_RELAY_RESOURCES,
    common_mounts,
    common_volumes,
    container_security,
    pod_resources,
    pod_security,
)
from esenas_operator.settings import Settings

Obj = dict[str, Any]

#: Items one relay lease may hold (esenas_aggregator.runtime.MAX_BATCH_ITEMS): the aggregator's
#: fair shares then split each iteration evenly over the relays.
LEASE_ITEMS: Final = 16384
KINDS: Final = (("apps/v1", "Deployment"), ("v1", "Service"), ("networking.k8s.io/v1", "NetworkPolicy"))


def aggregator_args(job: Job) -> list[str]:
    """The aggregator's extra flags for relays (none without them)."""
    return ["--max-lease-items", str(LEASE_ITEMS)] if relay_pods(job) else []


def relay_pods(job: Job) -> int:
    """The job's relay pods (0: none; see RelaysSpec.pods), whether or not it is stopped."""
    return job.spec.relays.pods(job.spec.workers.replicas)


def build_relays(body: Mapping[str, Any], job: Job, settings: Settings, stopped: bool = False) -> list[Obj]:
    """The relay children, or none when the job has no relays."""
    if not relay_pods(job):
        return []
    return [build_relay_deployment(body, job, settings, stopped), build_relay_service(body, job), build_relay_network_policy(body, job, settings)]


def build_relay_deployment(body: Mapping[str, Any], job: Job, settings: Settings, stopped: bool = False) -> Obj:
    name = job.name
    probe = services.health_probe()
    container: Obj = {
        "name": "relay",
        "image": job.spec.aggregator.image or settings.aggregator_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["esenas-relay"],
        "args": [
            "--upstream", names.aggregator_address(name, job.namespace),
            "--job", names.JOB_FILE,
            "--token-file", names.TOKEN_FILE,
            "--tls-ca-file", names.TLS_CA_FILE,
            "--tls-cert-file", names.TLS_CERT_FILE,
            "--tls-key-file", names.TLS_KEY_FILE,
            "--port", str(names.GRPC_PORT),
            "--http-port", str(names.HTTP_PORT),
            "--lease-items", str(LEASE_ITEMS),
        ],
        # Each relay is its own id at the aggregator: its pod's name.
        "env": [{"name": "ESENAS_RELAY_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": services.server_ports(),
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        "resources": pod_resources(job.spec.relays.resources, DEFAULT_RELAY_RESOURCES),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security(),
        "volumeMounts": common_mounts(),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": names.child_meta(body, names.relays(name), "relay"),
        "spec": {
            "replicas": 0 if stopped or job.spec.suspend else relay_pods(job),
            "selector": {"matchLabels": names.selector(name, "relay")},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": names.labels(name, "relay")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    # A stopped relay's round is re-issued by the aggregator: no need to linger.
                    "terminationGracePeriodSeconds": 10,
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": common_volumes(name, ("token", tls.CA_KEY, tls.CERT_KEY, tls.KEY_KEY)),
                },
            },
        },
    }


def build_relay_service(body: Mapping[str, Any], job: Job) -> Obj:
    return services.grpc_service(body, job.name, names.relays(job.name), "relay")


def build_relay_network_policy(body: Mapping[str, Any], job: Job, settings: Settings) -> Obj:
    """Only this job's workers reach the relays' gRPC; HTTP as for the aggregator."""
    return services.grpc_network_policy(body, job.name, names.relays(job.name), "relay", ("worker",), settings.http_access)
