"""The ESENASJob CustomResourceDefinition: the spec schema generated from the typed model in
``esenas.spec`` (through ``schema.py``), and the status schema, columns and subresources.

``scripts/gen-crd.py`` writes it to helm/esenas/crds/esenasjobs.yaml; a test fails on drift.
"""

from __future__ import annotations

from typing import Any, Final

import yaml
from esenas.spec import API_GROUP, KIND

from esenas_operator.schema import SPEC, Schema, _int, _num, _obj, _str

VERSION: Final = "v1alpha1"
PLURAL: Final = "esenasjobs"
SINGULAR: Final = "esenasjob"
SHORT_NAMES: Final = ("esj",)
CATEGORIES: Final = ("esenas",)
PHASES: Final = ("Pending", "Running", "Succeeded", "Failed", "Suspended")
#: The conditions the operator sets, Kubeflow style (``kubectl wait --for=condition=Succeeded``).
CONDITIONS: Final = {
    "Created": "True once the job's children (ConfigMap, Secret, Service, Deployments) exist.",
    "Running": "True while the fleet trains; False when suspended or finished.",
    "Succeeded": "True once a stopping rule was met and the result was saved.",
    "Failed": "True when the job cannot go on: an invalid spec of a job that never ran (reason InvalidSpec), a "
    "deadline, an aggregator past its backoffLimit, rollouts that fail; the message says why.",
    "Complete": "An alias of Succeeded, kept for older clients.",
    "Suspended": "True while spec.suspend holds the job.",
    "FleetOversized": "True when replicas exceed the work items one iteration can lease.",
    "WorkersFailing": "True while worker pods cannot run (CrashLoopBackOff, ImagePullBackOff): how many, and why.",
    "Reconciled": "False when the operator's last reconcile failed (reason ReconcileError, retried) or an edit of "
    "a job that runs was refused (reason InvalidSpec; the fleet keeps the last valid spec); True once applied again.",
}

_CONDITION: Final = _obj(
    "A metav1.Condition.",
    {
        "type": _str(
            "Condition type: " + "; ".join(f"{name}: {what}" for name, what in CONDITIONS.items()), maxLength=316
        ),
        "status": _str("True, False or Unknown.", None, ("True", "False", "Unknown")),
        "observedGeneration": _int("The .metadata.generation the condition was set for.", None, 0),
        "lastTransitionTime": _str("When the status last changed.", format="date-time"),
        "reason": _str("CamelCase machine-readable reason.", maxLength=1024),
        "message": _str("Human-readable detail.", maxLength=32768),
    },
    required=["type", "status", "lastTransitionTime", "reason", "message"],
)

STATUS: Final[Schema] = _obj(
    "Observed state, written by the operator. Counters only: never a per-pod list.",
    {
        "phase": _str("Pending, Running, Succeeded, Failed or Suspended.", None, PHASES),
        "conditions": {
            "type": "array",
            "description": "Conditions in metav1.Condition form, one per type: Created, Running, Succeeded and "
            "Failed (Kubeflow style; Complete is an alias of Succeeded), plus Suspended, FleetOversized, "
            "WorkersFailing and Reconciled.",
            "items": _CONDITION,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
            "maxItems": 16,
        },
        "observedGeneration": _int("The .metadata.generation the operator last acted on.", None, 0),
        "iteration": _int("ES iterations done.", None, 0),
        "envSteps": _int("Environment steps in all rollouts.", None, 0),
        "episodes": _int("Episodes in all rollouts.", None, 0),
        "bestReward": _num(
            "Reward of the best policy so far, its own: the mean of its topology's exact evals in one "
            "iteration, or without exact evals its single perturbed rollout."
        ),
        "meanReward": _num("Mean reward of the last iteration."),
        "trial": _str("With spec.trials: 'trial 2/3' while the trials run, 'trial 2 of 3 kept' once the best goes on.", maxLength=64),
        "workers": _obj(
            "Worker counts.",
            {
                "desired": _int("spec.workers.replicas as last applied.", None, 0),
                "ready": _int("Ready worker pods over all shards.", None, 0),
                "connected": _int("Workers the aggregator heard from recently.", None, 0),
                "shards": _int("Worker Deployments.", None, 0),
                "summary": _str("ready/desired, for kubectl get."),
            },
        ),
        "bestTopology": _obj(
            "Size of the best policy found.",
            {
                "size": _int("Trainable parameters of the best topology.", None, 0),
                "denseParams": _int("Parameters of the dense network with the same layers.", None, 0),
                "compression": _num(
                    "1 - size / denseParams: the fraction of the dense network's parameters the best topology "
                    "does without (0.94: 94% fewer numbers). 0 for a dense policy."
                ),
            },
        ),
        "result": _obj(
            "Where the result lives once the job ended: chunked ConfigMaps the operator owns, read back "
            "with `esenas fetch JOB` (docs/results.md).",
            {
                "configMap": _str(
                    "The manifest ConfigMap (J-result) naming the chunks J-result-0..n-1 and their SHA-256; "
                    "empty when nothing was stored (see message).",
                    maxLength=253,
                ),
                "chunks": _int("Chunk ConfigMaps holding the compressed result.", None, 0, 64),
                "bytes": _int("Compressed size of the result, all chunks together.", None, 0),
                "policyBytes": _int("Size of policy.json before compression.", None, 0),
                "sha256": _str("SHA-256 of the compressed result.", pattern="^[0-9a-f]{64}$"),
                "complete": {"type": "boolean", "description": "False when the result is a Failed job's best policy so far."},
                "iteration": _int("The ES iteration the result was taken at.", None, 0),
                "message": _str("Why nothing was stored, when configMap is empty.", maxLength=1024),
            },
        ),
        "aggregatorRestarts": _int("Restarts of the aggregator container.", None, 0),
        "selector": _str("Label selector of the worker pods (for the scale subresource and HPAs)."),
        "startTime": _str("When the fleet was first started.", format="date-time"),
        "completionTime": _str("When the job Succeeded or Failed.", format="date-time"),
        "reason": _str(
            "Why the job is in its phase (CamelCase): the reason of its most relevant condition (Failed, "
            "then Succeeded, Suspended, Running, Created); the Reason column.",
            maxLength=1024,
        ),
        "message": _str("Human-readable detail of the phase."),
        "kopf": {
            "type": "object",
            "description": "The operator framework's own state (kopf): its handlers' progress and the spec it "
            "last handled. Kept here rather than in annotations, whose 256 KiB limit a large spec would pass.",
            "x-kubernetes-preserve-unknown-fields": True,
        },
    },
)


def _column(name: str, path: str, typ: str, desc: str, priority: int = 0) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": typ, "jsonPath": path, "description": desc}
    if priority:
        col["priority"] = priority
    return col


def build_crd() -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CRD for ESENASJob."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{API_GROUP}",
            "labels": {"app.kubernetes.io/name": "esenas", "app.kubernetes.io/part-of": "esenas"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.workers.replicas",
                            "statusReplicasPath": ".status.workers.ready",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        _column("Phase", ".status.phase", "string", "Pending, Running, Succeeded, Failed or Suspended."),
                        _column("Reason", ".status.reason", "string", "Why the job is in its phase (status.reason)."),
                        _column("Iteration", ".status.iteration", "integer", "ES iterations done."),
                        _column("Best", ".status.bestReward", "number", "The best policy's own evaluated reward."),
                        _column("Workers", ".status.workers.summary", "string", "Ready/desired worker pods."),
                        _column("Size", ".status.bestTopology.size", "integer", "Parameters of the best topology.", 1),
                        _column("Trial", ".status.trial", "string", "With spec.trials: the trial training (status.trial).", 1),
                        _column("Age", ".metadata.creationTimestamp", "date", "Time since creation."),
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "ESENASJob trains a compact RL policy with ES-ENAS on a fleet of workers.",
                            "properties": {
                                "apiVersion": {"type": "string", "description": "Versioned schema of this object."},
                                "kind": {"type": "string", "description": "ESENASJob."},
                                "metadata": {"type": "object"},
                                "spec": SPEC,
                                "status": STATUS,
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as the YAML file committed under helm/esenas/crds/."""
    header = (
        "# Generated by scripts/gen-crd.py from the typed spec model (core/esenas/spec.py) and\n"
        "# operator/esenas_operator/crd.py: do not edit.\n"
    )
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)


def open_api_schema() -> Schema:
    """The openAPIV3Schema, for jsonschema validation of examples and test cases."""
    version: dict[str, Any] = build_crd()["spec"]["versions"][0]
    schema: Schema = version["schema"]["openAPIV3Schema"]
    return schema
