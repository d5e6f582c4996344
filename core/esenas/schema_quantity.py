"""Kubernetes quantities and resource lists, checked as the API server checks the pods and the
claim the operator makes of them.

The CRD checks only a quantity's form (controller-gen's pattern), so ``memory: -1Gi``, a request
above its limit, a resource named ``foo`` or ``storageSize: "0"`` would pass it and fail later,
when the operator creates the pod or the PersistentVolumeClaim. The parser refuses them up front,
naming the field, from `esenas run` and from the operator (which reports InvalidSpec before it
creates anything). The rules are those of Kubernetes' pkg/apis/core/validation
(ValidateResourceRequirements, validateContainerResourceName, ValidateResourceQuantityValue).

:func:`parse_quantity` reads a quantity exactly (a Fraction), as apimachinery's
resource.ParseQuantity does: decimal SI (k M G T P E, m u n), binary SI (Ki ... Ei), exponents
(1e3, 1E-3), values rounded up to the nanounit and capped at 2^63 - 1.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Iterator, Mapping
from fractions import Fraction
from typing import Any, Final

from esenas.schema_k8s import QUANTITY_PATTERN, qualified_name_problem
from esenas.schema_model import FieldError, camel

_FORM: Final = re.compile(r"([+-])?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?\Z")
_SUFFIX: Final = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    **{f"{p}i": Fraction(2 ** (10 * (i + 1))) for i, p in enumerate("KMGTPE")},
}
#: apimachinery caps a quantity at the largest int64 and rounds a non-zero one up to 1n.
_MAX: Final = Fraction(2**63 - 1)
_NANO: Final = 10**9
_INT32: Final = 2**31


class QuantityError(ValueError):
    """Text that is not a quantity the API server can parse; the message says why."""


def parse_quantity(value: int | str) -> Fraction:
    """The exact value of a Kubernetes quantity (an int, or text such as ``500m`` or ``1Gi``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return max(-_MAX, min(_MAX, Fraction(value)))
    if not isinstance(value, str):
        raise QuantityError(f"must be an integer or a string, got {type(value).__name__}")
    form = _FORM.match(value)
    if form is None:
        raise QuantityError("must be a Kubernetes quantity such as 500m, 2 or 1Gi, with a whole exponent")
    sign, number, suffix = form[1], form[2], form[3] or ""
    mantissa = Fraction(number)
    if suffix in _SUFFIX:
        magnitude = mantissa * _SUFFIX[suffix]
    else:
        exponent = int(suffix[1:])
        if not -_INT32 <= exponent < _INT32:
            raise QuantityError(f"must be a Kubernetes quantity: exponent {exponent} is out of range")
        # past 10^±40 the value is capped or rounded to 1n anyway: skip the huge power
        magnitude = mantissa * Fraction(10) ** max(-40, min(40, exponent))
    if magnitude:
        magnitude = min(_MAX, Fraction(math.ceil(magnitude * _NANO), _NANO))
    return -magnitude if sign == "-" else magnitude


#: The resource names a container may ask for without a domain (validateContainerResourceName).
STANDARD_RESOURCES: Final = ("cpu", "memory", "ephemeral-storage")
_HUGEPAGES: Final = "hugepages-"
_NAMES: Final = "cpu, memory, ephemeral-storage, hugepages-<page size> or an extended resource named domain/name, such as nvidia.com/gpu"


def _overcommit(name: str) -> bool:
    """Whether a request may be below its limit: not for hugepages or extended resources
    (helper.IsOvercommitAllowed)."""
    return "/" not in name and not name.startswith(_HUGEPAGES)


def _name_problem(name: str) -> str | None:
    if "/" not in name:
        if name in STANDARD_RESOURCES:
            return None
        if name.startswith(_HUGEPAGES):
            try:
                size = parse_quantity(name[len(_HUGEPAGES):])
            except QuantityError:
                size = Fraction(0)
            return None if size > 0 else f"names no page size (such as hugepages-2Mi); must be {_NAMES}"
        return f"unknown resource {name!r}: must be {_NAMES}"
    if "kubernetes.io/" in name:
        return "is in the kubernetes.io namespace, which Kubernetes keeps for its own resources; an extended resource has its own domain"
    if name.startswith("requests."):
        return "must not start with 'requests.', which resource quotas use"
    problem = qualified_name_problem(name) or qualified_name_problem("requests." + name)
    return None if problem is None else f"is not a valid extended resource name (domain/name): {problem}"


def _parsed(raw: Any, where: str, errors: list[FieldError]) -> Fraction | None:
    """``raw`` as a quantity, or None with the reason appended to ``errors``."""
    try:
        return parse_quantity(raw)
    except QuantityError as exc:
        errors.append(FieldError(where, f"{exc}, got {raw!r}"))
        return None


def _quantities(group: Mapping[str, Any], at: str, errors: list[FieldError], bad: set[str]) -> dict[str, Fraction]:
    """The valid quantities of one resource list, appending an error for each bad name or value
    (but those in ``bad``, which the schema refused already)."""
    out: dict[str, Fraction] = {}
    for name, raw in group.items():
        where = f"{at}.{name}"
        if where in bad:
            continue
        problem = _name_problem(name)
        if problem is not None:
            errors.append(FieldError(where, problem))
            continue
        if (value := _parsed(raw, where, errors)) is None:
            continue
        if value < 0:
            errors.append(FieldError(where, f"must not be negative, got {raw!r}"))
        elif "/" in name and value.denominator != 1:
            errors.append(FieldError(where, f"must be a whole number (an extended resource is counted in units), got {raw!r}"))
        elif name.startswith(_HUGEPAGES) and (value / parse_quantity(name[len(_HUGEPAGES):])).denominator != 1:
            errors.append(FieldError(where, f"must be a multiple of the page size {name[len(_HUGEPAGES):]}, got {raw!r}"))
        else:
            out[name] = value
    return out


def resource_errors(resources: Mapping[str, Any], at: str, bad: frozenset[str] | set[str] = frozenset()) -> list[FieldError]:
    """What the API server would refuse in a container's ``resources`` (a core/v1
    ResourceRequirements, already checked against its schema) at ``at``; ``bad``: the paths of
    quantities the schema refused."""
    errors: list[FieldError] = []
    groups = {key: resources.get(key) or {} for key in ("limits", "requests")}
    limits = _quantities(groups["limits"], f"{at}.limits", errors, set(bad))
    requests = _quantities(groups["requests"], f"{at}.requests", errors, set(bad))
    for name, request in requests.items():
        where, limit = f"{at}.requests.{name}", limits.get(name)
        if limit is None:
            if not _overcommit(name) and name not in groups["limits"]:
                errors.append(FieldError(where, f"needs limits.{name} too, equal to it: {name} cannot be overcommitted"))
        elif not _overcommit(name) and request != limit:
            errors.append(FieldError(where, f"must equal limits.{name} ({groups['limits'][name]}): {name} cannot be overcommitted, got {groups['requests'][name]!r}"))
        elif request > limit:
            errors.append(FieldError(where, f"must be <= limits.{name} ({groups['limits'][name]}), got {groups['requests'][name]!r}"))
    named = set(groups["limits"]) | set(groups["requests"])
    if any(n.startswith(_HUGEPAGES) for n in named) and not named & {"cpu", "memory"}:
        errors.append(FieldError(at, "hugepages need a cpu or memory request or limit too"))
    if resources.get("claims"):
        errors.append(FieldError(f"{at}.claims", "must be empty: the operator's pods declare no resourceClaims for a claim to name"))
    return errors


def quantity_fields(cls: type[Any], at: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path under spec, kind) of every field of spec dataclass ``cls`` that holds Kubernetes
    quantities: ``resources`` (a ResourceRequirements) or ``size`` (one positive quantity, by its pattern)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{at}.{camel(f.name)}" if at else camel(f.name)
        hint = next((a for a in typing.get_args(hints[f.name]) if a is not type(None)), hints[f.name])
        meta = f.metadata.get("esenas")
        if dataclasses.is_dataclass(hint):
            yield from quantity_fields(hint, path)  # type: ignore[arg-type]
        elif meta is not None and meta.schema is not None and {"limits", "requests"} <= set(meta.schema.get("properties", {})):
            yield path, "resources"
        elif meta is not None and meta.pattern == QUANTITY_PATTERN:
            yield path, "size"


def _at(spec: Mapping[str, Any], path: str) -> Any:
    value: Any = spec
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _entries(where: str, resources: Any) -> set[str]:
    """The paths of the quantities in ``resources`` at ``where``: an error on one of them leaves
    the others to check; an error elsewhere in it (a list that is not an object) skips it."""
    groups = {g: resources.get(g) for g in ("limits", "requests")} if isinstance(resources, Mapping) else {}
    return {f"{where}.{g}.{name}" for g, entries in groups.items() if isinstance(entries, Mapping) for name in entries}


def quantity_errors(spec: Mapping[str, Any], cls: type[Any], errors: list[FieldError], root: str = "spec") -> list[FieldError]:
    """The errors of every quantity field of ``spec`` (normalized) beyond those in ``errors``,
    which the schema found: a field refused already is not checked again."""
    out: list[FieldError] = []
    for path, kind in quantity_fields(cls):
        where, value = f"{root}.{path}", _at(spec, path)
        below = {e.path for e in errors if e.path.startswith((where + ".", where + "["))}
        if value is None or any(e.path == where for e in errors) or not below <= _entries(where, value):
            continue
        if kind == "resources":
            out += resource_errors(value, where, below)
            continue
        if (size := _parsed(value, where, out)) is None:
            continue
        if size <= 0:
            out.append(FieldError(where, f"must be greater than zero (a PersistentVolumeClaim's size), got {value!r}"))
    return out
