"""CRDs the fake-server tests apply: the project's real ESENASJob CRD, and a tiny
`widgets.fake.test` CRD with status and scale subresources for harness-only tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

REPO: Final = Path(__file__).resolve().parents[3]
ESENAS_CRD: Final = REPO / "helm" / "esenas" / "crds" / "esenasjobs.yaml"
EXAMPLES: Final = sorted((REPO / "manifests" / "examples").glob("*.yaml"))

WIDGET_CRD: Final[dict[str, Any]] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.fake.test"},
    "spec": {
        "group": "fake.test",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                  "shortNames": ["wd"]},
        "versions": [{
            "name": "v1",
            "served": True,
            "storage": True,
            "subresources": {
                "status": {},
                "scale": {"specReplicasPath": ".spec.size",
                          "statusReplicasPath": ".status.size",
                          "labelSelectorPath": ".status.selector"},
            },
            "additionalPrinterColumns": [
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "description": "What the widget should be.",
                        "required": ["size"],
                        "properties": {
                            "size": {"type": "integer", "minimum": 0, "maximum": 100,
                                     "description": "How many parts."},
                            "color": {"type": "string", "enum": ["red", "blue"],
                                      "default": "red", "description": "Paint."},
                            "extra": {"type": "object",
                                      "x-kubernetes-preserve-unknown-fields": True},
                            "min": {"type": "number", "default": 0},
                            "max": {"type": "number"},
                            "shape": {"type": "string", "description": "Fixed at creation.",
                                      "x-kubernetes-validations": [{
                                          "rule": "self == oldSelf",
                                          "message": "spec.shape is immutable"}]},
                        },
                        "x-kubernetes-validations": [{
                            "rule": "!has(self.max) || self.min <= self.max",
                            "message": "spec.min must be <= spec.max"}],
                    },
                    "status": {"type": "object",
                               "x-kubernetes-preserve-unknown-fields": True},
                },
            }},
        }],
    },
}


def widget(name: str, size: int = 1, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "fake.test/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"size": size, **spec}}


def esenas_crd_text() -> str:
    """The chart's CRD; the tests need it, so its absence is a failure, not a skip."""
    assert ESENAS_CRD.exists(), f"{ESENAS_CRD} is missing (the operator's CRD)"
    return ESENAS_CRD.read_text()


def dump(*objs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(objs)
