"""Validate an ESENASJob against the CRD the way an API server would: defaults, schema, CEL rules.

jsonschema checks the openAPIV3Schema (Draft 4 semantics, as OpenAPI 3.0); cel-python evaluates every
``x-kubernetes-validations`` rule, with ``oldSelf`` for transition rules on updates.
"""

from __future__ import annotations

import copy
from typing import Any

import celpy
import jsonschema
from esenas_operator.crd import open_api_schema

_ENV = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}


def apply_defaults(schema: dict[str, Any], obj: Any) -> Any:
    """Fill in defaults as the API server does: for absent fields of present objects, recursively."""
    if not isinstance(obj, dict) or schema.get("type") != "object":
        if isinstance(obj, list) and "items" in schema:
            return [apply_defaults(schema["items"], x) for x in obj]
        return obj
    out = dict(obj)
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = apply_defaults(sub, out[key])
    return out


def _program(rule: str) -> Any:
    if rule not in _PROGRAMS:
        _PROGRAMS[rule] = _ENV.program(_ENV.compile(rule))
    return _PROGRAMS[rule]


def cel_errors(schema: dict[str, Any], obj: Any, old: Any = None, path: str = "") -> list[str]:
    """Messages of every failing CEL rule in obj (transition rules only when old is given)."""
    errors: list[str] = []
    for v in schema.get("x-kubernetes-validations", []):
        is_transition = "oldSelf" in v["rule"]
        if is_transition and old is None:
            continue
        act: dict[str, Any] = {"self": celpy.json_to_cel(obj)}
        if is_transition:
            act["oldSelf"] = celpy.json_to_cel(old)
        result = _program(v["rule"]).evaluate(act)
        if isinstance(result, Exception) or not bool(result):
            errors.append(f"{path or '<root>'}: {v['message']}")
    if isinstance(obj, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in obj:
                sub_old = old.get(key) if isinstance(old, dict) else None
                errors += cel_errors(sub, obj[key], sub_old, f"{path}.{key}" if path else key)
    return errors


def validate(doc: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """All schema and CEL errors of doc (after defaulting); [] when the API server would accept it."""
    schema = open_api_schema()
    obj = apply_defaults(schema, doc)
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in jsonschema.Draft4Validator(schema).iter_errors(obj)
    ]
    if errors:
        return errors
    old_obj = apply_defaults(schema, old) if old is not None else None
    return cel_errors(schema, obj, old_obj)


def defaulted(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = apply_defaults(open_api_schema(), doc)
    return result
