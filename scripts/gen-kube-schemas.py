#!/usr/bin/env python3
"""Vendors the Kubernetes schemas of the ESENASJob's Kubernetes-typed fields into
core/esenas/schema_k8s.json, in the form controller-gen emits them into a CRD.

Source: the pip package kubernetes-validate (a dev dependency, pinned in pyproject.toml), file
kubernetes-json-schema/<version>-local-strict/_definitions.json. It is read here only; at run time
esenas.schema_k8s loads the vendored JSON, so neither the operator nor `esenas run` needs it.

What changes on the way, as controller-gen does for a CRD (a structural schema has no $ref, no
nullable types and no additionalProperties: false):
  * every $ref is inlined (a sibling description wins);
  * ``type: [X, "null"]`` becomes ``type: X``;
  * resource.Quantity becomes int-or-string with the quantity pattern, intstr.IntOrString
    int-or-string;
  * keys a CRD schema may not carry are dropped (patch strategy, unions, GVK, $schema, $id);
  * enums are added where Kubernetes has them (the +enum fields; Toleration.operator is
    Exists|Equal|"": Lt and Gt need a feature gate).

`--check` fails (exit 1) when the committed file differs from what this script writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

import genfile
import kubernetes_validate

REPO: Final = Path(__file__).resolve().parents[1]
OUT: Final = REPO / "core" / "esenas" / "schema_k8s.json"
K8S_VERSION: Final = "1.37.0"
SOURCE: Final = f"kubernetes-json-schema/v{K8S_VERSION}-local-strict/_definitions.json"

#: (definition, property) -> the field's schema in the ESENASJob, by name.
FIELDS: Final = {
    "resources": ("io.k8s.api.core.v1.Container", "resources"),
    "tolerations": ("io.k8s.api.core.v1.PodSpec", "tolerations"),
    "affinity": ("io.k8s.api.core.v1.PodSpec", "affinity"),
    "nodeSelector": ("io.k8s.api.core.v1.PodSpec", "nodeSelector"),
    "priorityClassName": ("io.k8s.api.core.v1.PodSpec", "priorityClassName"),
    "storageClassName": ("io.k8s.api.core.v1.PersistentVolumeClaimSpec", "storageClassName"),
}
QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
#: (definition, property) -> enum, where Kubernetes validates one (the API server's pod checks).
ENUMS: Final = {
    # "" is valid Kubernetes for both: an empty operator means Equal, an empty effect all effects.
    ("io.k8s.api.core.v1.Toleration", "operator"): ["Exists", "Equal", ""],
    ("io.k8s.api.core.v1.Toleration", "effect"): ["NoSchedule", "PreferNoSchedule", "NoExecute", ""],
    ("io.k8s.api.core.v1.NodeSelectorRequirement", "operator"): ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"],
    ("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement", "operator"): ["In", "NotIn", "Exists", "DoesNotExist"],
}
_DROP: Final = {
    "$schema", "$id", "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key",
    "x-kubernetes-unions", "x-kubernetes-group-version-kind",
}


def _definitions() -> dict[str, Any]:
    root = Path(kubernetes_validate.__file__).parent / SOURCE
    defs: dict[str, Any] = json.loads(root.read_text())["$defs"]
    return defs


def _convert(node: Any, defs: dict[str, Any], owner: str = "") -> Any:
    """One schema node in controller-gen's CRD form; ``owner`` names the definition it is in."""
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        out = _definition(name, defs)
        if "description" in node:
            out = {"description": node["description"], **{k: v for k, v in out.items() if k != "description"}}
        return out
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or (key == "additionalProperties" and value is False):
            continue
        if key == "type" and isinstance(value, list):
            value = next(t for t in value if t != "null")
        elif key == "properties":
            value = {p: _convert(s, defs, owner) for p, s in value.items()}
            for p in value:
                if (owner, p) in ENUMS:
                    value[p]["enum"] = ENUMS[(owner, p)]
        elif key in ("items", "additionalProperties"):
            value = _convert(value, defs, owner)
        out[key] = value
    return out


def _definition(name: str, defs: dict[str, Any]) -> dict[str, Any]:
    if name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
        return {"anyOf": [{"type": "integer"}, {"type": "string"}], "pattern": QUANTITY_PATTERN,
                "x-kubernetes-int-or-string": True}
    if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
        return {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
    converted: dict[str, Any] = _convert(defs[name], defs, name)
    return converted


def build() -> dict[str, Any]:
    defs = _definitions()
    fields = {field: _convert(defs[owner]["properties"][prop], defs, owner) for field, (owner, prop) in FIELDS.items()}
    return {
        "provenance": {
            "generator": "scripts/gen-kube-schemas.py",
            "source": f"kubernetes-validate {getattr(kubernetes_validate, '__version__', K8S_VERSION)}, {SOURCE}",
            "kubernetesVersion": K8S_VERSION,
            "fields": {field: f"{owner}.{prop}" for field, (owner, prop) in FIELDS.items()},
            "quantityPattern": "controller-gen's pattern for resource.Quantity",
        },
        "fields": fields,
    }


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.exit(genfile.main(OUT, render, __doc__))
