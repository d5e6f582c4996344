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
import re
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


# --------------------------------------------------------------------------- Kubernetes names
# apimachinery's pkg/util/validation, which the API server applies to object metadata and to
# the pods the operator creates from the spec.

_DNS1123_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS1123_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_NAME_PART: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")


def is_dns1123_label(value: str, max_length: int = 63) -> bool:
    """A DNS-1123 label (a namespace's name): lower-case alphanumerics and '-', at most 63."""
    return len(value) <= max_length and _DNS1123_LABEL.match(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    """A DNS-1123 subdomain: dot-separated labels, at most 253 characters."""
    return len(value) <= 253 and _DNS1123_SUBDOMAIN.match(value) is not None


def qualified_name_problem(value: str) -> str | None:
    """Why ``value`` is not a qualified name (``[prefix/]name``: a label or annotation key, an
    extended resource's name), or None when it is one."""
    prefix, slash, name = value.rpartition("/")
    if slash and not is_dns1123_subdomain(prefix):
        return f"its prefix {prefix!r} must be a DNS-1123 subdomain of at most 253 characters (such as example.com)"
    if not 0 < len(name) <= 63 or _NAME_PART.match(name) is None:
        return ("its name part must be 1-63 characters: alphanumerics, '-', '_' or '.', "
                "starting and ending with an alphanumeric")
    return None


def is_label_value(value: str) -> bool:
    """A label's value: empty, or at most 63 characters as a qualified name's name part."""
    return value == "" or (len(value) <= 63 and _NAME_PART.match(value) is not None)


# --------------------------------------------------------------------------- the same, as patterns
# For the CRD's structural schema (and CEL's matches()), which the parser checks too. RE2 and
# Python read them alike: '[.]' rather than an escape, which a CEL string literal would not take.
# A qualified name's prefix has its own bound (253), which a pattern cannot say next to its form:
# prefix_cel says it in CEL, qualified_name_problem in Python.

_SUBDOMAIN_RE: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_NAME_RE: Final = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
#: A label key, taint key or topologyKey: [prefix/]name.
QUALIFIED_NAME_PATTERN: Final = f"^({_SUBDOMAIN_RE}/)?{_NAME_RE}$"
#: The same or empty (a toleration's key: empty matches every key).
QUALIFIED_NAME_OR_EMPTY_PATTERN: Final = f"^(({_SUBDOMAIN_RE}/)?{_NAME_RE})?$"
#: Longest qualified name: a 253-character prefix, '/', a 63-character name.
QUALIFIED_NAME_MAX: Final = 253 + 1 + 63
#: A label value, with maxLength LABEL_VALUE_MAX.
LABEL_VALUE_PATTERN: Final = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_VALUE_MAX: Final = 63
#: A PriorityClass or StorageClass name (a DNS-1123 subdomain, maxLength 253), or empty (unset).
CLASS_NAME_PATTERN: Final = f"^({_SUBDOMAIN_RE})?$"
#: A namespace's name (a DNS-1123 label, maxLength 63).
DNS1123_LABEL_PATTERN: Final = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

_QUALIFIED: Final = ("a qualified name ([prefix/]name, such as kubernetes.io/hostname: an optional DNS-1123 subdomain "
                     "and '/', then 1-63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)")
#: What each pattern means, for the parser's messages (esenas.schema_validate).
K8S_PATTERN_HINTS: Final = {
    QUALIFIED_NAME_PATTERN: _QUALIFIED,
    QUALIFIED_NAME_OR_EMPTY_PATTERN: f"empty or {_QUALIFIED}",
    LABEL_VALUE_PATTERN: "a label value (empty, or alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)",
    CLASS_NAME_PATTERN: "empty or a DNS-1123 subdomain (lower-case alphanumerics, '-' and '.', starting and ending with an "
                        "alphanumeric, such as fast-ssd)",
    DNS1123_LABEL_PATTERN: "a namespace's name (a DNS-1123 label: lower-case alphanumerics and '-', starting and ending "
                           "with an alphanumeric)",
}


def prefix_cel(key: str) -> str:
    """CEL that holds when the qualified name ``key`` (its form checked by a pattern) has a prefix
    of at most 253 characters, or none."""
    return f"!{key}.contains('/') || {key}.matches('^[^/]{{1,253}}/')"
