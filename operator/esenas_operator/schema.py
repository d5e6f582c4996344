"""The ESENASJob's spec schema for the CRD, and helpers for the status schema.

The spec's openAPIV3Schema is generated from the typed model in ``esenas.spec`` (the same schema
the parser checks, with the cross-field rules of ``esenas.schema_rules`` as CEL), so the CRD and
`esenas run` cannot disagree. This module only adds what needs an API server: edits of a running
job follow ``esenas.edits``, a ``self == oldSelf`` rule on each immutable path.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Final

from esenas import edits
from esenas.spec import MAX_HIDDEN_LAYERS, MAX_TOLERATIONS, openapi_schema

Schema = dict[str, Any]

__all__ = ["MAX_HIDDEN_LAYERS", "MAX_TOLERATIONS", "SPEC", "Schema"]


def _int(desc: str, default: int | None = None, lo: int | None = None, hi: int | None = None) -> Schema:
    s: Schema = {"type": "integer", "description": desc}
    if hi is not None and hi > 2**53:
        s["format"] = "int64"
    if default is not None:
        s["default"] = default
    if lo is not None:
        s["minimum"] = lo
    if hi is not None:
        s["maximum"] = hi
    return s


def _num(
    desc: str,
    default: float | None = None,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> Schema:
    s: Schema = {"type": "number", "description": desc}
    if default is not None:
        s["default"] = default
    if lo is not None:
        s["minimum"] = lo
        if lo_open:
            s["exclusiveMinimum"] = True
    if hi is not None:
        s["maximum"] = hi
    return s


def _str(desc: str, default: str | None = None, enum: tuple[str, ...] = (), **extra: Any) -> Schema:
    s: Schema = {"type": "string", "description": desc, **extra}
    if default is not None:
        s["default"] = default
    if enum:
        s["enum"] = list(enum)
    return s


def _obj(
    desc: str, props: dict[str, Schema], rules: Sequence[tuple[str, str]] = (), **extra: Any
) -> Schema:
    s: Schema = {"type": "object", "description": desc, "properties": props, **extra}
    if rules:
        s["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in rules]
    return s


def _immutable(spec: Schema) -> Schema:
    """``spec`` with a ``self == oldSelf`` rule on every path of :data:`esenas.edits.IMMUTABLE`, and
    the rule that keeps a running job from switching how it gives its population (a copy: the
    group constants above stay as they are)."""
    spec = copy.deepcopy(spec)
    derived = dict(edits.DERIVED_DEFAULT_RULES)
    for path in edits.IMMUTABLE:
        if path in derived:
            spec.setdefault("x-kubernetes-validations", []).append(
                {"rule": derived[path], "message": edits.immutable_message(path), "fieldPath": "." + path}
            )
            continue
        node = spec
        for key in path.split("."):
            node = node["properties"][key]
        node.setdefault("x-kubernetes-validations", []).append(
            {"rule": "self == oldSelf", "message": edits.immutable_message(path)}
        )
    rule, message = edits.ES_MODE_RULE
    spec["properties"]["es"].setdefault("x-kubernetes-validations", []).append({"rule": rule, "message": message})
    return spec


SPEC: Final = _immutable(openapi_schema())
