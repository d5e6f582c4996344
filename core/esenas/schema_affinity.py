"""A worker pod's affinity, checked as the API server checks it (Kubernetes' ValidateAffinity:
ValidateNodeSelector, ValidatePreferredSchedulingTerms, validatePodAffinityTerm and
metav1's ValidateLabelSelector).

What a pattern or a bound can say is in the schema, so `kubectl apply` refuses it: requirement
keys and topologyKeys are qualified names, label-selector values label values, namespaces DNS-1123
labels, weights 1-100 (:func:`affinity_schema`). The rest is the parser's alone
(:func:`affinity_errors`): which values an operator takes (In and NotIn at least one, Exists and
DoesNotExist none, Gt and Lt one integer), matchFields (metadata.name, In or NotIn, one node name),
matchLabels keys, a key's prefix of at most 253 characters, and at least one required node
selector term. As CEL these would sit four lists deep in core/v1 types that set no maxItems, and
the API server prices a rule once for every item those lists could hold in a request (millions),
past its cost budget; bounding them would refuse affinities Kubernetes accepts. How matchLabelKeys
and mismatchLabelKeys relate to the labelSelector changes with the Kubernetes version: the
operator's dry run of the worker Deployment leaves that to the API server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from esenas.schema_k8s import (
    DNS1123_LABEL_PATTERN,
    LABEL_VALUE_MAX,
    LABEL_VALUE_PATTERN,
    QUALIFIED_NAME_MAX,
    QUALIFIED_NAME_PATTERN,
    is_dns1123_subdomain,
    k8s_field,
    qualified_name_problem,
)
from esenas.schema_model import FieldError, Schema

#: Whether the schema refused this path, something in it or what holds it: its checks are skipped.
Refused = Callable[[str], bool]

_REQUIRED: Final = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED: Final = "preferredDuringSchedulingIgnoredDuringExecution"
_POD_KINDS: Final = ("podAffinity", "podAntiAffinity")
#: Go's strconv.ParseInt, which the scheduler reads a Gt or Lt value with.
_INTEGER: Final = re.compile(r"[+-]?[0-9]+\Z")


# --------------------------------------------------------------------------- the schema


def _props(schema: Schema, *path: str) -> dict[str, Schema]:
    """The properties of the object at ``path`` below ``schema`` ('[]': a list's items)."""
    for key in path:
        schema = schema["items"] if key == "[]" else schema["properties"][key]
    props: dict[str, Schema] = schema["properties"]
    return props


def _qualified(field: Schema) -> None:
    field.update(pattern=QUALIFIED_NAME_PATTERN, maxLength=QUALIFIED_NAME_MAX)


def _weight(field: Schema) -> None:
    field.update(minimum=1, maximum=100)


def affinity_schema() -> Schema:
    """core/v1's Affinity, with the patterns and bounds the API server applies to a pod's."""
    schema = k8s_field("affinity")
    node = _props(schema, "nodeAffinity")
    for term in (_props(node[_REQUIRED], "nodeSelectorTerms", "[]"), _props(node[_PREFERRED], "[]", "preference")):
        _qualified(_props(term["matchExpressions"], "[]")["key"])
    _weight(_props(node[_PREFERRED], "[]")["weight"])
    for kind in _POD_KINDS:
        pod = _props(schema, kind)
        _weight(_props(pod[_PREFERRED], "[]")["weight"])
        for term in (_props(pod[_REQUIRED], "[]"), _props(pod[_PREFERRED], "[]", "podAffinityTerm")):
            _qualified(term["topologyKey"])
            term["namespaces"]["items"].update(pattern=DNS1123_LABEL_PATTERN, maxLength=63)
            for selector in ("labelSelector", "namespaceSelector"):
                sel = term[selector]["properties"]
                requirement = _props(sel["matchExpressions"], "[]")
                _qualified(requirement["key"])
                requirement["values"]["items"].update(pattern=LABEL_VALUE_PATTERN, maxLength=LABEL_VALUE_MAX)
                sel["matchLabels"]["additionalProperties"].update(pattern=LABEL_VALUE_PATTERN, maxLength=LABEL_VALUE_MAX)
    return schema


# --------------------------------------------------------------------------- the parser's checks


def _items(value: Any) -> list[tuple[int, Mapping[str, Any]]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, Mapping)] if isinstance(value, list) else []


def _key_prefix(req: Mapping[str, Any], field: str, at: str) -> list[FieldError]:
    """A qualified name the pattern passed may still have a prefix past 253 characters."""
    key = req.get(field)
    problem = qualified_name_problem(key) if isinstance(key, str) else None
    return [] if problem is None else [FieldError(f"{at}.{field}", f"must be a qualified name: {problem}")]


def _values_by_operator(req: Mapping[str, Any], at: str) -> list[FieldError]:
    """The values a requirement's operator takes (node selector and label selector alike)."""
    op, values = req.get("operator"), req.get("values") or []
    if op in ("In", "NotIn") and not values:
        return [FieldError(f"{at}.values", f"must have at least one value when operator is {op!r}")]
    if op in ("Exists", "DoesNotExist") and values:
        return [FieldError(f"{at}.values", f"must be empty when operator is {op!r}, got {values!r}")]
    if op in ("Gt", "Lt"):
        if len(values) != 1:
            return [FieldError(f"{at}.values", f"must have exactly one value (an integer) when operator is {op!r}, got {len(values)}")]
        if not isinstance(values[0], str) or _INTEGER.match(values[0]) is None or not -(2**63) <= int(values[0]) < 2**63:
            return [FieldError(f"{at}.values[0]", f"must be an integer when operator is {op!r} (a node label compared as a number), got {values[0]!r}")]
    return []


def _requirement(req: Mapping[str, Any], at: str, refused: Refused) -> list[FieldError]:
    """A node selector's or a label selector's requirement: its values by operator, its key's prefix."""
    out = [] if refused(f"{at}.operator") or refused(f"{at}.values") else _values_by_operator(req, at)
    return out if refused(f"{at}.key") else out + _key_prefix(req, "key", at)


def _field_requirement(req: Mapping[str, Any], at: str) -> list[FieldError]:
    """A node field selector: only a node's metadata.name, In or NotIn exactly one node name."""
    out = []
    if req.get("key") != "metadata.name":
        out.append(FieldError(f"{at}.key", f"must be 'metadata.name', the only node field a selector can match, got {req.get('key')!r}"))
    values = req.get("values") or []
    if req.get("operator") not in ("In", "NotIn"):
        out.append(FieldError(f"{at}.operator", f"must be 'In' or 'NotIn' for a node field selector, got {req.get('operator')!r}"))
    elif len(values) != 1:
        out.append(FieldError(f"{at}.values", f"must have exactly one value (a node's name) for a node field selector, got {len(values)}"))
    elif not isinstance(values[0], str) or not is_dns1123_subdomain(values[0]):
        out.append(FieldError(f"{at}.values[0]", f"must be a node's name (a DNS-1123 subdomain), got {values[0]!r}"))
    return out


def _node_term(term: Any, at: str, refused: Refused) -> list[FieldError]:
    if not isinstance(term, Mapping):
        return []
    out: list[FieldError] = []
    for j, req in _items(term.get("matchExpressions")):
        out += _requirement(req, f"{at}.matchExpressions[{j}]", refused)
    for j, req in _items(term.get("matchFields")):
        where = f"{at}.matchFields[{j}]"
        if not refused(where):
            out += _field_requirement(req, where)
    return out


def _label_selector(selector: Any, at: str, refused: Refused) -> list[FieldError]:
    if not isinstance(selector, Mapping):
        return []
    out: list[FieldError] = []
    labels = selector.get("matchLabels")
    for key in labels if isinstance(labels, Mapping) else ():
        problem = qualified_name_problem(key) if isinstance(key, str) else None
        if problem is not None:
            out.append(FieldError(f"{at}.matchLabels", f"keys must be qualified names ([prefix/]name, such as app.kubernetes.io/name), got {key!r}: {problem}"))
    for j, req in _items(selector.get("matchExpressions")):
        out += _requirement(req, f"{at}.matchExpressions[{j}]", refused)
    return out


def _pod_term(term: Any, at: str, refused: Refused) -> list[FieldError]:
    if not isinstance(term, Mapping):
        return []
    out: list[FieldError] = []
    for selector in ("labelSelector", "namespaceSelector"):
        out += _label_selector(term.get(selector), f"{at}.{selector}", refused)
    if not refused(f"{at}.topologyKey"):
        out += _key_prefix(term, "topologyKey", at)
    for field in ("matchLabelKeys", "mismatchLabelKeys"):
        keys = term.get(field)
        for j, key in enumerate(keys if isinstance(keys, list) else ()):
            problem = qualified_name_problem(key) if isinstance(key, str) else None
            if problem is not None:
                out.append(FieldError(f"{at}.{field}[{j}]", f"must be a label key ([prefix/]name): {problem}, got {key!r}"))
    return out


def affinity_errors(affinity: Mapping[str, Any], at: str, refused: Refused) -> list[FieldError]:
    """What the API server would refuse in a pod's ``affinity`` (at ``at``) that its schema does not
    say; parts the schema refused already are skipped."""
    out: list[FieldError] = []
    node = affinity.get("nodeAffinity")
    if isinstance(node, Mapping):
        required = node.get(_REQUIRED)
        where = f"{at}.nodeAffinity.{_REQUIRED}"
        if isinstance(required, Mapping):
            terms = required.get("nodeSelectorTerms")
            if terms == []:
                out.append(FieldError(f"{where}.nodeSelectorTerms", "must have at least one node selector term"))
            out += [e for i, term in _items(terms) for e in _node_term(term, f"{where}.nodeSelectorTerms[{i}]", refused)]
        for i, term in _items(node.get(_PREFERRED)):
            out += _node_term(term.get("preference"), f"{at}.nodeAffinity.{_PREFERRED}[{i}].preference", refused)
    for kind in _POD_KINDS:
        pod = affinity.get(kind)
        if not isinstance(pod, Mapping):
            continue
        for i, term in _items(pod.get(_REQUIRED)):
            out += _pod_term(term, f"{at}.{kind}.{_REQUIRED}[{i}]", refused)
        for i, term in _items(pod.get(_PREFERRED)):
            out += _pod_term(term.get("podAffinityTerm"), f"{at}.{kind}.{_PREFERRED}[{i}].podAffinityTerm", refused)
    return out
