"""What the CRD's CEL rules refuse in a spec, as the fake API server evaluates them after its own
defaulting: the causes the parser's tests compare their verdicts with."""

from __future__ import annotations

import copy
from typing import Any

from esenas.schema_model import FieldError
from esenas.schema_validate import normalize
from esenas.spec import openapi_schema

from tests.fakekube.cel import check_rules
from tests.fakekube.schema import Outcome


def cel_causes(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The causes (``field``, ``message``) the CRD's CEL rules give for ``spec``."""
    schema = openapi_schema()
    errors: list[FieldError] = []
    obj = normalize(copy.deepcopy(spec), schema, "spec", errors)
    assert errors == []
    out = Outcome()
    check_rules(obj, None, schema, "spec", out)
    return list(out.causes)
