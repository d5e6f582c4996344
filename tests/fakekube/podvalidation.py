"""The real server's checks of the pod-spec fields a job passes through to its pods: resource
quantities and names, requests within limits, tolerations, node selectors, affinity terms and
priorityClassName, worded like k8s.io/kubernetes/pkg/apis/core/validation.

A quantity that does not parse fails decoding (400 BadRequest), as in a real server, before
validation; the rest answer 422 Invalid with one cause per field.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Final

from .errors import bad_request
from .schema import Outcome

QUANTITY_MESSAGE: Final = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_QUANTITY: Final = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))((?:[KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_SUFFIX: Final[dict[str, Decimal | int]] = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
                  "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
                  "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_STANDARD: Final = frozenset({"cpu", "memory", "ephemeral-storage", "storage", "pods"})
_QUALIFIED_RESOURCE: Final = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NODE_OPERATORS: Final = ("DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn")
_LABEL_OPERATORS: Final = ("DoesNotExist", "Exists", "In", "NotIn")


def quantity(value: Any, kind: str) -> Decimal:
    """The value of a resource.Quantity; an unparsable one fails decoding, as in a real server."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: {QUANTITY_MESSAGE}')
    if not isinstance(value, str):
        return Decimal(str(value))
    match = _QUANTITY.match(value)
    if match is None:
        raise bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: {QUANTITY_MESSAGE}')
    number, suffix = match.group(1), match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(number) * Decimal(10) ** int(suffix[1:])
    return Decimal(number) * Decimal(_SUFFIX[suffix])


def _unsupported(out: Outcome, path: str, value: Any, allowed: tuple[str, ...]) -> None:
    choices = ", ".join(f'"{a}"' for a in allowed)
    out.error("FieldValueNotSupported", path, f'Unsupported value: "{value}": supported values: {choices}')


def check_resources(res: Any, path: str, kind: str, out: Outcome) -> None:
    if not isinstance(res, dict):
        return
    parsed: dict[str, dict[str, Decimal]] = {}
    for group in ("limits", "requests"):
        for name, value in (res.get(group) or {}).items():
            if name not in _STANDARD and not _QUALIFIED_RESOURCE.match(name):
                out.error("FieldValueInvalid", f"{path}.{group}[{name}]",
                          f'Invalid value: "{name}": must be a standard resource type or fully qualified')
            amount = quantity(value, kind)
            parsed.setdefault(group, {})[name] = amount
            if amount < 0:
                out.error("FieldValueInvalid", f"{path}.{group}[{name}]",
                          f'Invalid value: "{value}": must be greater than or equal to 0')
    for name, amount in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(name)
        if limit is not None and amount > limit:
            out.error("FieldValueInvalid", f"{path}.requests",
                      f'Invalid value: "{res["requests"][name]}": must be less than or equal to {name} limit of '
                      f'{res["limits"][name]}')


def _check_tolerations(tolerations: Any, path: str, out: Outcome) -> None:
    for i, t in enumerate(tolerations or ()):
        here = f"{path}[{i}]"
        if not isinstance(t, dict):
            out.error("FieldValueTypeInvalid", here, "Invalid value: must be an object")
            continue
        op = t.get("operator", "Equal") or "Equal"
        if op not in ("Equal", "Exists"):
            _unsupported(out, f"{here}.operator", op, ("Equal", "Exists"))
        if op == "Exists" and t.get("value"):
            out.error("FieldValueInvalid", f"{here}.operator",
                      f"Invalid value: \"{t['value']}\": value must be empty when `operator` is 'Exists'")
        if not t.get("key") and op != "Exists":
            out.error("FieldValueInvalid", f"{here}.operator",
                      f'Invalid value: "{op}": operator must be Exists when `key` is empty, which means "match all values and all keys"')
        effect = t.get("effect")
        if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            _unsupported(out, f"{here}.effect", effect, ("NoExecute", "NoSchedule", "PreferNoSchedule"))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            out.error("FieldValueInvalid", f"{here}.effect",
                      f'Invalid value: "{effect or ""}": effect must be \'NoExecute\' when `tolerationSeconds` is set')


def _check_expressions(exprs: Any, path: str, operators: tuple[str, ...], out: Outcome) -> None:
    for i, e in enumerate(exprs or ()):
        here = f"{path}[{i}]"
        op = e.get("operator") if isinstance(e, dict) else None
        if op not in operators:
            _unsupported(out, f"{here}.operator", op, operators)
            continue
        values = e.get("values") or []
        if op in ("In", "NotIn") and not values:
            out.error("FieldValueRequired", f"{here}.values",
                      "Required value: must be specified when `operator` is 'In' or 'NotIn'")
        if op in ("Exists", "DoesNotExist") and values:
            out.error("FieldValueForbidden", f"{here}.values",
                      "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")


def _check_affinity(affinity: Any, path: str, out: Outcome) -> None:
    if not isinstance(affinity, dict):
        return
    node = affinity.get("nodeAffinity") or {}
    required = (node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")
    base = f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
    for i, term in enumerate(required or ()):
        _check_expressions(term.get("matchExpressions"), f"{base}[{i}].matchExpressions", _NODE_OPERATORS, out)
    for i, pref in enumerate(node.get("preferredDuringSchedulingIgnoredDuringExecution") or ()):
        here = f"{path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        weight = pref.get("weight")
        if not isinstance(weight, int) or not 1 <= weight <= 100:
            out.error("FieldValueInvalid", f"{here}.weight", f"Invalid value: {weight}: must be in the range 1-100")
        _check_expressions((pref.get("preference") or {}).get("matchExpressions"),
                           f"{here}.preference.matchExpressions", _NODE_OPERATORS, out)
    for kind in ("podAffinity", "podAntiAffinity"):
        terms = (affinity.get(kind) or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or ()
        for i, term in enumerate(terms):
            here = f"{path}.{kind}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"
            if not term.get("topologyKey"):
                out.error("FieldValueRequired", f"{here}.topologyKey", "Required value: can not be empty")
            _check_expressions((term.get("labelSelector") or {}).get("matchExpressions"),
                               f"{here}.labelSelector.matchExpressions", _LABEL_OPERATORS, out)
            _check_label_keys(term, here, out)


def _check_label_keys(term: dict[str, Any], path: str, out: Outcome) -> None:
    """validateLabelKeys: matchLabelKeys and mismatchLabelKeys pick labels for a labelSelector."""
    for field in ("matchLabelKeys", "mismatchLabelKeys"):
        if term.get(field) and term.get("labelSelector") is None:
            out.error("FieldValueForbidden", f"{path}.{field}", "Forbidden: must not be specified when labelSelector is not set")


def check_scheduling(spec: dict[str, Any], path: str, out: Outcome) -> None:
    """nodeSelector, tolerations, affinity and priorityClassName of a pod spec."""
    for value in (spec.get("nodeSelector") or {}).values():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            out.error("FieldValueInvalid", f"{path}.nodeSelector",
                      f'Invalid value: "{value}": a valid label must be an empty string or consist of alphanumeric '
                      "characters, '-', '_' or '.', and must start and end with an alphanumeric character")
    _check_tolerations(spec.get("tolerations"), f"{path}.tolerations", out)
    _check_affinity(spec.get("affinity"), f"{path}.affinity", out)
    name = spec.get("priorityClassName")
    if name is not None and (not isinstance(name, str) or len(name) > 253 or not _SUBDOMAIN.match(name)):
        out.error("FieldValueInvalid", f"{path}.priorityClassName",
                  f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                  "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")
