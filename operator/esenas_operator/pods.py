"""What every pod of a job shares: the restricted Pod Security contexts, resources with the
operator's defaults, and the job's ConfigMap, Secret and /tmp volumes (used by
esenas_operator.builders, which re-exports the defaults)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from esenas_operator import names

Obj = dict[str, Any]

#: What the operator gives a pod whose resources are unset (esenas.spec_deploy words them; a test compares).
DEFAULT_AGGREGATOR_RESOURCES: Final = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}
DEFAULT_WORKER_RESOURCES: Final = {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
DEFAULT_RELAY_RESOURCES: Final = {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}


def pod_security() -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": names.RUN_AS,
        "runAsGroup": names.RUN_AS,
        "fsGroup": names.RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> Obj:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }


def pod_resources(given: Mapping[str, Any], default: Mapping[str, Any]) -> Obj:
    return json.loads(json.dumps(dict(given) if given else dict(default)))  # type: ignore[no-any-return]


def common_volumes(job: str, secret_keys: tuple[str, ...]) -> list[Obj]:
    """The job's ConfigMap, the Secret's ``secret_keys`` only (a worker never sees the TLS key),
    and a writable /tmp."""
    items = [{"key": k, "path": k} for k in secret_keys]
    return [
        {"name": "job", "configMap": {"name": names.spec_configmap(job), "items": [{"key": "job.yaml", "path": "job.yaml"}]}},
        {"name": "token", "secret": {"secretName": names.token_secret(job), "defaultMode": 0o440, "items": items}},
        {"name": "tmp", "emptyDir": {}},
    ]


def common_mounts() -> list[Obj]:
    return [
        {"name": "job", "mountPath": names.JOB_DIR, "readOnly": True},
        {"name": "token", "mountPath": names.TOKEN_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
