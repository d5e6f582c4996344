"""The Kubernetes schemas of the spec's Kubernetes-typed fields (resources, tolerations, affinity,
nodeSelector, priorityClassName, storageClassName), as controller-gen emits them into a CRD.

They are vendored in ``schema_k8s.json``, written by ``scripts/gen-kube-schemas.py`` from the
kubernetes-validate package's Kubernetes OpenAPI schemas (its ``provenance`` key says which), so
neither `esenas run` nor the operator needs that package. The CRD carries them, and the parser
checks the same subtrees against them: ``cpu: lots`` is refused locally too.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any, Final

from esenas.schema_model import Schema

_FILE: Final = Path(__file__).with_name("schema_k8s.json")

#: controller-gen's pattern for a resource.Quantity (a string value of an int-or-string).
QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


@functools.cache
def _vendored() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_FILE.read_text())
    return data


def k8s_field(name: str) -> Schema:
    """A copy of the Kubernetes schema of one field: ``resources``, ``tolerations``, ``affinity``,
    ``nodeSelector``, ``priorityClassName`` or ``storageClassName``."""
    schema: Schema = copy.deepcopy(_vendored()["fields"][name])
    return schema
