"""One generic validator for a structural openAPIV3Schema, with the API server's semantics and
the parser's messages.

:func:`normalize` does what the API server does to a custom object before it validates it: it
drops nulls of non-nullable fields, applies schema defaults, reads a whole number written as a
float (``10.0``, ``1e3``) as the integer JSON makes it, and (where the server would prune
an unknown field, or refuse it under ``fieldValidation=Strict``, kubectl's default) records
``unknown field``. :func:`validate` then checks types, enums, bounds, lengths, patterns, items,
required fields and int-or-string, and reports every problem as ``path: reason``.

Two checks only the parser makes, because JSON cannot carry what they refuse: numbers must be
finite (YAML has ``.inf``), and a mapping's keys must be strings.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import sys
from collections.abc import Mapping
from typing import Any, Final

from esenas.schema_model import FieldError, Schema


def type_name(v: Any) -> str:
    """How a YAML value's type is named in messages."""
    if isinstance(v, Mapping):
        return "object"
    return {list: "list", str: "string", bool: "boolean", int: "integer", float: "float", type(None): "null"}.get(
        type(v), type(v).__name__
    )


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _preserves(schema: Schema) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def _is_object(schema: Schema) -> bool:
    return schema.get("type", "object") == "object" and not schema.get("x-kubernetes-int-or-string")


def normalize(value: Any, schema: Schema, path: str, errors: list[FieldError]) -> Any:
    """A copy of ``value`` with nulls pruned and defaults applied; unknown fields become errors."""
    if isinstance(value, Mapping) and _is_object(schema):
        props: Mapping[str, Schema] = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        out: dict[Any, Any] = {}
        for key, item in value.items():
            sub = props.get(key) if isinstance(key, str) else None
            if sub is None and isinstance(addl, dict):
                sub = addl
            if sub is None:
                if _preserves(schema):
                    out[key] = copy.deepcopy(item)
                else:
                    errors.append(FieldError(_join(path, key), "unknown field"))
                continue
            if item is None and not sub.get("nullable"):
                continue
            out[key] = normalize(item, sub, _join(path, key), errors)
        for key, sub in props.items():
            if key not in out and "default" in sub:
                out[key] = normalize(copy.deepcopy(sub["default"]), sub, _join(path, key), errors)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [normalize(item, schema["items"], f"{path}[{i}]", errors) for i, item in enumerate(value)]
    if isinstance(value, float) and schema.get("type") == "integer" and value.is_integer():
        return int(value)  # JSON has one number type: kubectl sends 10.0 and 1e3 as 10 and 1000
    return copy.deepcopy(value)


_EXPECTED = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
}


#: The range of a JSON integer as the API server decodes it.
_INT64: Final = (-(2**63), 2**63 - 1)


def _type_ok(value: Any, typ: str) -> bool:
    if typ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if typ == "string":
        return isinstance(value, str)
    if typ == "boolean":
        return isinstance(value, bool)
    if typ == "object":
        return isinstance(value, Mapping)
    if typ == "array":
        return isinstance(value, list)
    return True


def _got(value: Any) -> str:
    if isinstance(value, Mapping | list) or value is None:
        return type_name(value)
    return f"{type_name(value)} {value!r}"


def validate(value: Any, schema: Schema, path: str, errors: list[FieldError], hints: Mapping[str, str]) -> None:
    """Append a :class:`FieldError` for every way ``value`` (normalized) breaks ``schema``.

    ``hints`` names what a pattern means (``pattern -> "a Kubernetes quantity such as 1Gi"``),
    so that a mismatch says "must be a Kubernetes quantity such as 1Gi, got 'lots'".
    """
    if value is None:
        if not schema.get("nullable"):
            errors.append(FieldError(path, f"must be {_EXPECTED.get(schema.get('type', 'object'), 'a value')}, got null"))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok(value, "integer")):
            errors.append(FieldError(path, f"must be an integer or a string, got {_got(value)}"))
        elif isinstance(value, str):
            _string(value, schema, path, errors, hints)
        return
    typ = schema.get("type")
    if typ and not _type_ok(value, typ):
        errors.append(FieldError(path, f"must be {_EXPECTED[typ]}, got {_got(value)}"))
        return
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        errors.append(FieldError(path, f"must be one of {', '.join(repr(v) if v == '' else str(v) for v in enum)}; got {value!r}"))
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        _bounds(value, schema, path, errors)
    elif isinstance(value, str):
        _string(value, schema, path, errors, hints)
    elif isinstance(value, list):
        _array(value, schema, path, errors, hints)
    elif isinstance(value, Mapping):
        _object(value, schema, path, errors, hints)


def _bounds(value: float, schema: Schema, path: str, errors: list[FieldError]) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        errors.append(FieldError(path, f"must be finite, got {value!r}"))
        return
    if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
        # as the API server decodes JSON: an integer past int64 is a float64, and one past
        # float64's range (a 400-digit number) is refused; Python would fail later, converting it
        digits = f"a {len(str(abs(value)))}-digit number"
        if schema.get("type") == "integer":
            errors.append(FieldError(path, f"must be a 64-bit integer (at most {_INT64[1]}), got {digits}"))
            return
        if abs(value) > sys.float_info.max:
            errors.append(FieldError(path, f"must be finite, got {digits}"))
            return
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and schema.get("exclusiveMinimum") and value <= lo:
        errors.append(FieldError(path, f"must be > {lo}, got {value}"))
    elif lo is not None and value < lo:
        errors.append(FieldError(path, f"must be >= {lo}, got {value}"))
    if hi is not None and schema.get("exclusiveMaximum") and value >= hi:
        errors.append(FieldError(path, f"must be < {hi}, got {value}"))
    elif hi is not None and value > hi:
        errors.append(FieldError(path, f"must be <= {hi}, got {value}"))


def _string(value: str, schema: Schema, path: str, errors: list[FieldError], hints: Mapping[str, str]) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(FieldError(path, f"must be at least {schema['minLength']} characters long, got {len(value)}"))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(FieldError(path, f"must be at most {schema['maxLength']} characters long, got {len(value)}"))
    pattern = schema.get("pattern")
    if pattern and not _re2(pattern).search(value):
        what = hints.get(pattern)
        reason = f"must be {what}, got {value!r}" if what else f"must match {pattern}, got {value!r}"
        errors.append(FieldError(path, reason))


@functools.cache
def _re2(pattern: str) -> re.Pattern[str]:
    """``pattern`` as the API server (Go's RE2) reads it: ``\\w``, ``\\d`` and ``\\s`` ASCII only, and
    ``$`` the end of the text (Python's ``$`` also matches before a final newline)."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern), re.ASCII)


def _array(value: list[Any], schema: Schema, path: str, errors: list[FieldError], hints: Mapping[str, str]) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(FieldError(path, f"must have at least {schema['minItems']} items, got {len(value)}"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(FieldError(path, f"must have at most {schema['maxItems']} items, got {len(value)}"))
        return  # as the API server: a list over its bound is not looked into
    if schema.get("uniqueItems") or schema.get("x-kubernetes-list-type") == "set":
        seen: list[Any] = []
        for i, item in enumerate(value):
            if item in seen:
                errors.append(FieldError(f"{path}[{i}]", f"duplicate value {item!r}"))
            seen.append(item)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            validate(item, items, f"{path}[{i}]", errors, hints)


def _object(value: Mapping[Any, Any], schema: Schema, path: str, errors: list[FieldError], hints: Mapping[str, str]) -> None:
    props: Mapping[str, Schema] = schema.get("properties") or {}
    for req in schema.get("required") or []:
        if req not in value:
            what = hints.get((props.get(req) or {}).get("pattern", ""))
            errors.append(FieldError(_join(path, req), f"required: {what}" if what else "required"))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append(FieldError(path, f"must have at most {schema['maxProperties']} keys, got {len(value)}"))
    addl = schema.get("additionalProperties")
    for key, item in value.items():
        if not isinstance(key, str):
            errors.append(FieldError(_join(path, key), f"keys must be strings, got {_got(key)}"))
            continue
        sub: Schema | None = props.get(key)
        if sub is None and isinstance(addl, dict):
            sub = addl
        if sub is not None:
            validate(item, sub, _join(path, key), errors, hints)
