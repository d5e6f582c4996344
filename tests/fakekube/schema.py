"""Server-side handling of a CRD's structural openAPIV3Schema, as the real apiextensions
server does it: prune nulls and unknown fields, apply defaults, then validate types,
required fields, enums and bounds, with apimachinery's error wording."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]


@dataclass
class Outcome:
    """What processing one object found: field errors (422) and pruned unknown fields."""

    causes: list[dict[str, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def error(self, reason: str, path: str, message: str) -> None:
        self.causes.append({"reason": reason, "message": message, "field": path})


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _preserves(schema: Schema) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def prune_and_default(obj: Any, schema: Schema, path: str, out: Outcome) -> Any:
    """Drop non-nullable nulls and unknown fields (recording them), then fill defaults."""
    if isinstance(obj, dict) and schema.get("type", "object") == "object" and not schema.get(
        "x-kubernetes-int-or-string"
    ):
        props: dict[str, Schema] = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        for key in list(obj):
            sub = props.get(key)
            if sub is None and isinstance(addl, dict):
                sub = addl
            if path == "" and key in ("apiVersion", "kind", "metadata"):
                continue
            if sub is None:
                if not _preserves(schema) and addl is not True:
                    out.unknown.append(_join(path, key))
                    del obj[key]
                continue
            if obj[key] is None and not sub.get("nullable"):
                del obj[key]
                continue
            obj[key] = prune_and_default(obj[key], sub, _join(path, key), out)
        for key, sub in props.items():
            if key not in obj and "default" in sub:
                obj[key] = prune_and_default(
                    copy.deepcopy(sub["default"]), sub, _join(path, key), out
                )
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            obj[i] = prune_and_default(item, schema["items"], f"{path}[{i}]", out)
    return obj


_TYPE_NAMES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_ok(value: Any, typ: str) -> bool:
    if typ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = _TYPE_NAMES.get(typ)
    return expected is None or isinstance(value, expected)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "object" if isinstance(value, dict) else "array"
    return "null" if value is None else str(value)


def validate(value: Any, schema: Schema, path: str, out: Outcome) -> None:
    """Structural checks with the messages kube-openapi's validator gives."""
    if value is None:
        if not schema.get("nullable"):
            out.error("FieldValueTypeInvalid", path,
                      f'Invalid value: "null": {path} in body must be of type {schema.get("type", "object")}: "null"')
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok(value, "integer")):
            out.error("FieldValueTypeInvalid", path,
                      f'Invalid value: {_show(value)}: {path} in body must be of type int-or-string')
        elif isinstance(value, str):
            # kube-openapi checks a string's format rules (a resource.Quantity's pattern, say)
            # whatever else the value could be; an integer skips them.
            _string(value, schema, path, out)
        return
    typ = schema.get("type")
    if typ and not _type_ok(value, typ):
        shown = "number" if isinstance(value, float) else type(value).__name__
        shown = {"str": "string", "int": "integer", "bool": "boolean", "dict": "object",
                 "list": "array"}.get(shown, shown)
        out.error("FieldValueTypeInvalid", path,
                  f'Invalid value: "{shown}": {path} in body must be of type {typ}: "{shown}"')
        return
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        allowed = ", ".join(_show(v) for v in enum)
        out.error("FieldValueNotSupported", path,
                  f"Unsupported value: {_show(value)}: supported values: {allowed}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _bounds(value, schema, path, out)
    if isinstance(value, str):
        _string(value, schema, path, out)
    if isinstance(value, list):
        _array(value, schema, path, out)
    if isinstance(value, dict):
        _object(value, schema, path, out)


def _bounds(value: float, schema: Schema, path: str, out: Outcome) -> None:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None:
        if schema.get("exclusiveMinimum") and value <= lo:
            out.error("FieldValueInvalid", path,
                      f"Invalid value: {_show(value)}: {path} in body should be greater than {lo}")
        elif value < lo:
            out.error("FieldValueInvalid", path, f"Invalid value: {_show(value)}: {path} in body "
                      f"should be greater than or equal to {lo}")
    if hi is not None:
        if schema.get("exclusiveMaximum") and value >= hi:
            out.error("FieldValueInvalid", path,
                      f"Invalid value: {_show(value)}: {path} in body should be less than {hi}")
        elif value > hi:
            out.error("FieldValueInvalid", path, f"Invalid value: {_show(value)}: {path} in body "
                      f"should be less than or equal to {hi}")
    mult = schema.get("multipleOf")
    if mult and (value / mult) != int(value / mult):
        out.error("FieldValueInvalid", path,
                  f"Invalid value: {_show(value)}: {path} in body should be a multiple of {mult}")


def _string(value: str, schema: Schema, path: str, out: Outcome) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        out.error("FieldValueInvalid", path, f"Invalid value: {_show(value)}: {path} in body "
                  f"should be at least {schema['minLength']} chars long")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.error("FieldValueTooLong", path,
                  f"Too long: may not be more than {schema['maxLength']} bytes")
    pattern = schema.get("pattern")
    if pattern and not re.search(pattern, value):
        out.error("FieldValueInvalid", path, f"Invalid value: {_show(value)}: {path} in body "
                  f"should match '{pattern}'")


def _array(value: list[Any], schema: Schema, path: str, out: Outcome) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        out.error("FieldValueInvalid", path,
                  f"Invalid value: {len(value)}: {path} in body should have at least "
                  f"{schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        out.error("FieldValueTooMany", path,
                  f"Too many: {len(value)}: must have at most {schema['maxItems']} items")
    if schema.get("uniqueItems") or schema.get("x-kubernetes-list-type") == "set":
        seen: list[Any] = []
        for i, item in enumerate(value):
            if item in seen:
                out.error("FieldValueDuplicate", f"{path}[{i}]", f"Duplicate value: {_show(item)}")
            seen.append(item)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            validate(item, items, f"{path}[{i}]", out)


def _object(value: dict[str, Any], schema: Schema, path: str, out: Outcome) -> None:
    props: dict[str, Schema] = schema.get("properties") or {}
    for req in schema.get("required") or []:
        if req not in value:
            out.error("FieldValueRequired", _join(path, req), "Required value")
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        out.error("FieldValueInvalid", path, f"Invalid value: {len(value)}: {path} in body should "
                  f"have at least {schema['minProperties']} properties")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        out.error("FieldValueTooMany", path,
                  f"Too many: {len(value)}: must have at most {schema['maxProperties']} items")
    addl = schema.get("additionalProperties")
    for key, item in value.items():
        if path == "" and key in ("apiVersion", "kind", "metadata"):
            continue
        sub = props.get(key)
        if sub is None and isinstance(addl, dict):
            sub = addl
        if sub is not None:
            validate(item, sub, _join(path, key), out)


def process(obj: dict[str, Any], schema: Schema | None) -> tuple[dict[str, Any], Outcome]:
    """Prune, default and validate a whole custom object against its version's schema."""
    out = Outcome()
    if not schema:
        return obj, out
    obj = prune_and_default(copy.deepcopy(obj), schema, "", out)
    validate(obj, schema, "", out)
    return obj, out
