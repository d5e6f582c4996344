"""Validate an ESENASJob against the CRD the way the API server does, with the project's fake API
server's pipeline (tests/fakekube): prune nulls and unknown fields, apply defaults, validate the
structural schema, then every ``x-kubernetes-validations`` CEL rule (``oldSelf`` rules on updates).

Unknown fields count as errors: kubectl's default field validation is Strict.

One shim, until tests/fakekube does it: the real server also checks the ``pattern`` of an
int-or-string's string value (controller-gen's resource.Quantity pattern); fakekube stops at the
type check (schema.validate returns early for int-or-string).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from esenas_operator.crd import open_api_schema

from tests.fakekube.cel import check_rules
from tests.fakekube.schema import Outcome, process

_SCHEMA = open_api_schema()
#: How fakekube's CEL errors start: 'Invalid value: "<kind of self>": MESSAGE'.
_CEL_PREFIX = re.compile(r'^Invalid value: "(object|array|string|int|float|bool)": ')


def _admit(doc: dict[str, Any]) -> tuple[dict[str, Any], Outcome]:
    return process(copy.deepcopy(doc), _SCHEMA)


def _int_or_string_patterns(value: Any, schema: dict[str, Any], path: str, out: Outcome) -> None:
    if schema.get("x-kubernetes-int-or-string"):
        pattern = schema.get("pattern")
        if isinstance(value, str) and pattern and not re.search(pattern, value):
            out.error("FieldValueInvalid", path, f'Invalid value: "{value}": {path} in body should match \'{pattern}\'')
    elif isinstance(value, dict):
        props, addl = schema.get("properties") or {}, schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) or (addl if isinstance(addl, dict) else None)
            if sub is not None:
                _int_or_string_patterns(item, sub, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _int_or_string_patterns(item, schema["items"], f"{path}[{i}]", out)


def validate(doc: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Every error the API server answers for doc, as ``field: message`` (a CEL rule's own message),
    plus ``field: unknown field`` for each pruned field; [] when it is accepted."""
    obj, out = _admit(doc)
    _int_or_string_patterns(obj, _SCHEMA, "", out)
    if not out.causes:
        old_obj = _admit(old)[0] if old is not None else None
        check_rules(obj, old_obj, _SCHEMA, "", out)
    # A failed CEL rule reads 'FIELD: Invalid value: "object": MESSAGE'; kept as 'FIELD: MESSAGE'.
    errors = [f'{c["field"]}: {_CEL_PREFIX.sub("", c["message"])}' for c in out.causes]
    return errors + [f"{f}: unknown field" for f in out.unknown]


def defaulted(doc: dict[str, Any]) -> dict[str, Any]:
    """doc as the API server stores it: nulls and unknown fields pruned, defaults applied."""
    return _admit(doc)[0]
