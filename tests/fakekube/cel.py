"""CRD validation rules (`x-kubernetes-validations`, CEL) evaluated with cel-python, with
the real server's semantics: values typed by the schema, transition rules (`oldSelf`) only on
update, and ratcheting (a subtree unchanged by an update is not re-checked)."""

from __future__ import annotations

import functools
import re
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from .schema import Outcome, Schema

_OLD_SELF = re.compile(r"\boldSelf\b")


@functools.lru_cache(maxsize=1024)
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def to_cel(value: Any, schema: Schema) -> Any:
    """A JSON value as CEL sees it: `type: number` is always a double, as in Kubernetes."""
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        fallback: Schema = addl if isinstance(addl, dict) else {}
        return celtypes.MapType({celtypes.StringType(k): to_cel(v, props.get(k, fallback))
                                 for k, v in value.items()})
    if isinstance(value, list):
        items = schema.get("items")
        return celtypes.ListType([to_cel(v, items if isinstance(items, dict) else {})
                                  for v in value])
    if (schema.get("type") == "number" and isinstance(value, int)
            and not isinstance(value, bool)):
        return celtypes.DoubleType(float(value))
    return json_to_cel(value)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else type(value).__name__


def _check_node(value: Any, old: Any, schema: Schema, path: str, out: Outcome) -> None:
    for rule in schema.get("x-kubernetes-validations") or []:
        text = rule.get("rule", "")
        transition = bool(_OLD_SELF.search(text))
        if transition and old is None:
            continue
        context = {"self": to_cel(value, schema)}
        if transition:
            context["oldSelf"] = to_cel(old, schema)
        field = path + rule["fieldPath"] if rule.get("fieldPath") else path
        try:
            result = _program(text).evaluate(context)
        except (CELEvalError, CELParseError, TypeError, ValueError) as err:
            out.error("FieldValueInvalid", field,
                      f'Invalid value: "{_kind(value)}": {err} evaluating rule: {text}')
            continue
        if isinstance(result, CELEvalError):
            out.error("FieldValueInvalid", field,
                      f'Invalid value: "{_kind(value)}": {result.args[0]} evaluating rule: {text}')
        elif result is not True and result != celtypes.BoolType(True):
            message = rule.get("message") or f"failed rule: {text}"
            reason = rule.get("reason", "FieldValueInvalid")
            if reason == "FieldValueForbidden":
                out.error(reason, field, f"Forbidden: {message}")
            elif reason == "FieldValueRequired":
                out.error(reason, field, f"Required value: {message}")
            else:
                out.error(reason, field, f'Invalid value: "{_kind(value)}": {message}')


def check_rules(value: Any, old: Any, schema: Schema, path: str, out: Outcome) -> None:
    """Evaluate every rule in the schema tree against `value` (and `old` on updates)."""
    if old is not None and value == old:
        return  # ratcheting: unchanged values are not re-validated
    if value is None:
        return
    _check_node(value, old, schema, path, out)
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) or (addl if isinstance(addl, dict) else None)
            if sub is not None:
                old_item = old.get(key) if isinstance(old, dict) else None
                check_rules(item, old_item, sub, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            check_rules(item, None, schema["items"], f"{path}[{i}]", out)
