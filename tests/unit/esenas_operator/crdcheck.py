"""Validate an ESENASJob against the CRD the way the API server does, with the project's fake API
server's pipeline (tests/fakekube): prune nulls and unknown fields, apply defaults, validate the
structural schema, then every ``x-kubernetes-validations`` CEL rule (``oldSelf`` rules on updates).

Unknown fields count as errors: kubectl's default field validation is Strict.
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


def validate(doc: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Every error the API server answers for doc, as ``field: message`` (a CEL rule's own message),
    plus ``field: unknown field`` for each pruned field; [] when it is accepted."""
    obj, out = _admit(doc)
    if not out.causes:
        old_obj = _admit(old)[0] if old is not None else None
        check_rules(obj, old_obj, _SCHEMA, "", out)
    # A failed CEL rule reads 'FIELD: Invalid value: "object": MESSAGE'; kept as 'FIELD: MESSAGE'.
    errors = [f'{c["field"]}: {_CEL_PREFIX.sub("", c["message"])}' for c in out.causes]
    return errors + [f"{f}: unknown field" for f in out.unknown]


def defaulted(doc: dict[str, Any]) -> dict[str, Any]:
    """doc as the API server stores it: nulls and unknown fields pruned, defaults applied."""
    return _admit(doc)[0]
