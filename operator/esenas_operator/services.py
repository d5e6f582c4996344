"""The Service and NetworkPolicy of a gRPC server pod (the aggregator, the relays): one shape for both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from esenas_operator import names
from esenas_operator.netpol import HttpAccess

Obj = dict[str, Any]


def server_ports() -> list[Obj]:
    """The container ports of a gRPC server pod: grpc 50051 and http 9090."""
    return [
        {"name": "grpc", "containerPort": names.GRPC_PORT, "protocol": "TCP"},
        {"name": "http", "containerPort": names.HTTP_PORT, "protocol": "TCP"},
    ]


def health_probe() -> Obj:
    """HTTP, not the gRPC probe: the kubelet's gRPC probe cannot speak TLS."""
    return {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5}


def grpc_service(body: Mapping[str, Any], job: str, name: str, component: str) -> Obj:
    """ClusterIP Service ``name`` for the ``component`` pods: ports grpc 50051 and http 9090."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": names.child_meta(body, name, component),
        "spec": {
            "type": "ClusterIP",
            "selector": names.selector(job, component),
            "ports": [
                {"name": "grpc", "port": names.GRPC_PORT, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"},
                {"name": "http", "port": names.HTTP_PORT, "targetPort": "http", "protocol": "TCP"},
            ],
        },
    }


def grpc_network_policy(body: Mapping[str, Any], job: str, name: str, component: str, clients: tuple[str, ...], http: HttpAccess) -> Obj:
    """Only this job's ``clients`` pods reach the ``component`` pods' gRPC port; HTTP as ``http``
    says (every pod by default, for Prometheus and the operator; esenas_operator.netpol)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": names.child_meta(body, name, component),
        "spec": {
            "podSelector": {"matchLabels": names.selector(job, component)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": names.selector(job, c)}} for c in clients],
                    "ports": [{"protocol": "TCP", "port": names.GRPC_PORT}],
                },
                http.rule(),
            ],
        },
    }
