"""The spec's pod knobs (workers.nodeSelector, tolerations, affinity and priorityClassName, and the
checkpoint claim's storageClassName), checked as the API server checks the pods and the claim the
operator makes of them: Kubernetes' pkg/apis/core/validation (ValidatePodSpecNodeSelector,
ValidateTolerations, ValidateAffinity, and DNS-1123 subdomains for the class names).

The core/v1 schemas (esenas.schema_k8s) give only each field's type, so ``nodeSelector: {bad
key!: x}`` or a toleration ``{operator: Exists, value: v}`` passed `esenas run`, the operator's
checks and the CRD, and failed later, when the API server refused the worker Deployment, naming the
Deployment rather than the field. Now:

* the schema (the CRD's, which the parser checks too) tightens these fields with patterns and
  bounds: nodeSelector values, class names, toleration keys and values, and in affinity every
  requirement key, topologyKey, label-selector value, namespace and weight (esenas.schema_affinity);
* CEL rules on the CRD, each with its Python twin here, say what a pattern cannot: nodeSelector
  keys, and the toleration rules that tie two fields (:data:`TOLERATION_RULES`);
* the parser alone checks the rest of affinity (esenas.schema_affinity says why).

CEL cost, as the API server estimates it before it accepts the CRD (cel-go's model: matches()
costs ceil(0.1 x the string's bound) x ceil(0.25 x the pattern's length), a bound being 4 x
maxLength): a toleration rule reads strings of at most 4 x 317 bytes, about 600 a rule, times
MAX_TOLERATIONS (64) items; the nodeSelector rule's map keys are sized 0 by the API server (its
SchemaDeclType gives map keys no bound, as no schema can), and maxProperties bounds its loop. Both stay far below the limits
(10^7 an expression, 10^8 for the CRD).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final

from esenas.schema_affinity import affinity_errors
from esenas.schema_k8s import (
    LABEL_VALUE_MAX,
    LABEL_VALUE_PATTERN,
    QUALIFIED_NAME_MAX,
    QUALIFIED_NAME_OR_EMPTY_PATTERN,
    QUALIFIED_NAME_PATTERN,
    k8s_field,
    prefix_cel,
    qualified_name_problem,
)
from esenas.schema_model import FieldError, Schema

Toleration = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class ItemRule:
    """A rule on one toleration: CEL for the CRD, the same check in Python, one message for both
    (the parser adds the value it refuses)."""

    #: The field the error names (the CEL rule's fieldPath), whose value the parser quotes.
    field: str
    cel: str
    message: str
    #: True when ``toleration`` breaks the rule.
    broken: Callable[[Toleration], bool]


def _exists(t: Toleration) -> bool:
    return t.get("operator") == "Exists"


TOLERATION_RULES: Final = (
    ItemRule(
        "operator", "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
        "must be 'Exists' when key is empty (an empty key with Exists tolerates every taint)",
        lambda t: not t.get("key") and not _exists(t),
    ),
    ItemRule(
        "value", "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
        "must be empty when operator is 'Exists' (Exists matches every value of the key)",
        lambda t: _exists(t) and bool(t.get("value")),
    ),
    ItemRule(
        "effect", "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        "must be 'NoExecute' when tolerationSeconds is set (only a NoExecute taint evicts a pod)",
        lambda t: "tolerationSeconds" in t and t.get("effect") != "NoExecute",
    ),
    ItemRule(
        "key", "!has(self.key) || " + prefix_cel("self.key"),
        "must have a prefix (before '/') of at most 253 characters",
        lambda t: bool(t.get("key")) and qualified_name_problem(t["key"]) is not None,
    ),
)

#: What the CRD and the parser say of a nodeSelector key that is no label key.
NODE_SELECTOR_KEYS: Final = ("keys must be qualified names ([prefix/]name, such as kubernetes.io/arch or "
                             "node.kubernetes.io/instance-type)")
_NODE_SELECTOR_CEL: Final = f"self.all(k, k.matches('{QUALIFIED_NAME_PATTERN}') && ({prefix_cel('k')}))"


def _label_value() -> Schema:
    return {"type": "string", "pattern": LABEL_VALUE_PATTERN, "maxLength": LABEL_VALUE_MAX}


def node_selector_schema() -> Schema:
    """core/v1's nodeSelector, with label values and a CEL rule on its keys (label keys)."""
    schema = k8s_field("nodeSelector")
    schema["additionalProperties"] = _label_value()
    schema["x-kubernetes-validations"] = [{"rule": _NODE_SELECTOR_CEL, "message": NODE_SELECTOR_KEYS}]
    return schema


def tolerations_schema() -> Schema:
    """core/v1's tolerations: keys and values by pattern, and :data:`TOLERATION_RULES` as CEL."""
    schema = k8s_field("tolerations")
    item = schema["items"]
    item["properties"]["key"].update(pattern=QUALIFIED_NAME_OR_EMPTY_PATTERN, maxLength=QUALIFIED_NAME_MAX)
    item["properties"]["value"].update(_label_value())
    item["x-kubernetes-validations"] = [{"rule": r.cel, "message": r.message, "fieldPath": "." + r.field} for r in TOLERATION_RULES]
    return schema


# --------------------------------------------------------------------------- the parser's checks


def _refused(at: str, errors: list[FieldError]) -> bool:
    """Whether the schema refused ``at``, something in it, or what holds it."""
    return any(e.path == at or e.path.startswith((at + ".", at + "[")) or at.startswith((e.path + ".", e.path + "[")) for e in errors)


def _node_selector_errors(selector: Any, at: str, errors: list[FieldError]) -> list[FieldError]:
    if not isinstance(selector, Mapping) or any(e.path == at for e in errors):
        return []
    out = []
    for key in selector:
        problem = qualified_name_problem(key) if isinstance(key, str) else None
        if problem is not None:
            out.append(FieldError(at, f"{NODE_SELECTOR_KEYS}, got {key!r}: {problem}"))
    return out


def _toleration_errors(tolerations: Any, at: str, errors: list[FieldError]) -> list[FieldError]:
    if not isinstance(tolerations, list) or any(e.path == at for e in errors):
        return []
    out = []
    for i, toleration in enumerate(tolerations):
        where = f"{at}[{i}]"
        if not isinstance(toleration, Mapping) or _refused(where, errors):
            continue  # an item the schema refused is reported once, by the schema
        for rule in TOLERATION_RULES:
            if rule.broken(toleration):
                out.append(FieldError(f"{where}.{rule.field}", f"{rule.message}, got {toleration.get(rule.field, '')!r}"))
    return out


def pod_errors(spec: Mapping[str, Any], errors: list[FieldError], root: str = "spec") -> list[FieldError]:
    """What the API server would refuse in the pod knobs of ``spec`` (normalized) beyond
    ``errors``, the schema's: the CEL rules' Python twins and affinity's parser-only checks."""
    workers = spec.get("workers")
    if not isinstance(workers, Mapping):
        return []
    at = f"{root}.workers"
    out = _node_selector_errors(workers.get("nodeSelector"), f"{at}.nodeSelector", errors)
    out += _toleration_errors(workers.get("tolerations"), f"{at}.tolerations", errors)
    affinity = workers.get("affinity")
    if isinstance(affinity, Mapping) and not any(e.path == f"{at}.affinity" for e in errors):
        out += affinity_errors(affinity, f"{at}.affinity", lambda where: _refused(where, errors))
    return out
