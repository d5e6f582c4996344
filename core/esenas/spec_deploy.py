"""The Kubernetes side of the ESENASJob spec: the worker fleet and the aggregator pod.

Pod knobs (resources, node selector, tolerations, affinity, priority class) and the
checkpoint volume, as typed frozen dataclasses of the same model as :mod:`esenas.spec`, which
re-exports them; their schemas come from core/v1 (``esenas.schema_k8s``), with what the API
server checks in a pod's knobs added (``esenas.schema_pod``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from esenas.schema_affinity import affinity_schema
from esenas.schema_k8s import CLASS_NAME_PATTERN, QUANTITY_PATTERN, k8s_field
from esenas.schema_model import spec_field
from esenas.schema_pod import node_selector_schema, tolerations_schema

#: Largest tolerations list accepted, so the API server can bound the cost of CEL rules.
MAX_TOLERATIONS: Final = 64
#: Most nodeSelector labels, so the API server can bound the cost of the CEL rule on their keys.
MAX_NODE_SELECTOR: Final = 64

#: Most worker Deployments (shards) of one job: ceil(replicas / shardSize). Each is an object the
#: operator creates, watches and rolls, and a ReplicaSet besides; 100,000 pods fit in 100 shards.
MAX_WORKER_SHARDS: Final = 1000

#: What the operator gives a pod whose resources are unset (esenas_operator.builders; a test compares).
WORKER_RESOURCES_DEFAULT: Final = "requests cpu 1 and memory 512Mi, limits memory 1Gi"
AGGREGATOR_RESOURCES_DEFAULT: Final = "requests cpu 1 and memory 1Gi, limits memory 4Gi"
RELAY_RESOURCES_DEFAULT: Final = "requests cpu 1 and memory 512Mi, limits memory 1Gi"


@dataclass(frozen=True)
class WorkersSpec:
    DOC: ClassVar[str] = "The rollout worker fleet."

    replicas: int = spec_field("Number of worker pods. kubectl scale changes it.", 4, minimum=0, maximum=100_000)
    shard_size: int = spec_field(
        "Most pods in one worker Deployment; larger fleets are sharded, into at most "
        f"{MAX_WORKER_SHARDS} Deployments (replicas <= {MAX_WORKER_SHARDS} x shardSize).", 1000, minimum=1, maximum=3000
    )
    batch_size: int = spec_field(
        "Work items a worker pulls at once. Keep it at perturbationsPerWorker for fixed-length episodes; 2 "
        "for heavy-tailed ones (early termination), with es.minPairsFraction 0.8 (docs/operations.md).",
        8, minimum=1, maximum=4096,
    )
    item_timeout_seconds: float = spec_field(
        "After this, unfinished work is re-issued to another worker.", 60.0, minimum=0.1, maximum=86_400.0
    )
    image: str | None = spec_field("Worker image; the operator's default when unset.", None, max_length=512)
    resources: Mapping[str, Any] = spec_field(
        "CPU and memory requests and limits of each worker pod (a core/v1 ResourceRequirements). Unset "
        f"(or empty) means the operator's default: {WORKER_RESOURCES_DEFAULT}.",
        default_factory=dict,
        schema=k8s_field("resources"),
    )
    node_selector: Mapping[str, str] = spec_field(
        "Node labels worker pods must match (a core/v1 PodSpec nodeSelector): label keys ([prefix/]name, such as "
        "kubernetes.io/arch) and label values.",
        default_factory=dict,
        schema=node_selector_schema(),
        max_properties=MAX_NODE_SELECTOR,
    )
    tolerations: tuple[Mapping[str, Any], ...] = spec_field(
        "core/v1 Tolerations of worker pods.", (), schema=tolerations_schema(), max_items=MAX_TOLERATIONS
    )
    affinity: Mapping[str, Any] = spec_field(
        "A core/v1 Affinity for worker pods.", default_factory=dict, schema=affinity_schema()
    )
    priority_class_name: str | None = spec_field(
        "PriorityClass of worker pods.", None, schema=k8s_field("priorityClassName"), pattern=CLASS_NAME_PATTERN, max_length=253
    )


@dataclass(frozen=True)
class CheckpointSpec:
    DOC: ClassVar[str] = "Where and how often the aggregator checkpoints."

    every_iterations: int = spec_field("Checkpoint every this many iterations.", 10, minimum=1, maximum=1_000_000)
    storage_size: str | None = spec_field(  # None: emptyDir; else a PVC of this size
        "Size of a PersistentVolumeClaim for checkpoints, e.g. 1Gi; unset means an emptyDir.",
        None,
        pattern=QUANTITY_PATTERN,
        max_length=64,
    )
    storage_class_name: str | None = spec_field(
        "StorageClass of the checkpoint claim.", None, schema=k8s_field("storageClassName"), pattern=CLASS_NAME_PATTERN,
        max_length=253,
    )


@dataclass(frozen=True)
class AggregatorSpec:
    DOC: ClassVar[str] = "The central aggregator: ES update, NAS controller, checkpoints."

    image: str | None = spec_field("Aggregator image; the operator's default when unset.", None, max_length=512)
    resources: Mapping[str, Any] = spec_field(
        "CPU and memory requests and limits of the aggregator pod (a core/v1 ResourceRequirements). Unset "
        f"(or empty) means the operator's default: {AGGREGATOR_RESOURCES_DEFAULT}.",
        default_factory=dict,
        schema=k8s_field("resources"),
    )
    checkpoint: CheckpointSpec = field(default_factory=CheckpointSpec)


@dataclass(frozen=True)
class RelaysSpec:
    DOC: ClassVar[str] = (
        "Relay pods between the workers and the aggregator (docs/relay-tier.md): each serves many "
        "workers and hands their results to the aggregator in a few large calls per iteration."
    )

    replicas: int = spec_field(
        "Number of relay pods; 0 means the workers dial the aggregator directly. About one per 100-500 "
        "workers (docs/operations.md sizes the tier). Exclusive with workersPerRelay.",
        0, minimum=0, maximum=1000,
    )
    workers_per_relay: int | None = spec_field(
        "Size the relay tier from the fleet instead: ceil(workers.replicas / workersPerRelay) relay pods, "
        "at least one, so that the tier follows kubectl scale and an HPA (docs/operations.md sizes it). "
        "Exclusive with replicas.",
        None, minimum=100, maximum=100_000,
    )
    resources: Mapping[str, Any] = spec_field(
        "CPU and memory requests and limits of each relay pod (a core/v1 ResourceRequirements). Unset "
        f"(or empty) means the operator's default: {RELAY_RESOURCES_DEFAULT}.",
        default_factory=dict,
        schema=k8s_field("resources"),
    )

    def pods(self, workers: int) -> int:
        """Relay pods for a fleet of ``workers`` pods: ``replicas``, or with ``workersPerRelay``
        one per that many workers, at least one (the workers' address never flips to the
        aggregator's and back as the fleet scales, which would roll every worker pod)."""
        if self.workers_per_relay is None:
            return self.replicas
        return max(1, math.ceil(workers / self.workers_per_relay))
