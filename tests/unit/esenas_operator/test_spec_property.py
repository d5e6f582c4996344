"""Property: the parser (esenas.spec.parse_spec) and the CRD, as the API server applies it, accept
and refuse the same specs.

Specs are drawn from the generated openAPIV3Schema itself: each field absent, null, valid, or
invalid (out of bounds, off its enum or pattern, of the wrong type), plus unknown fields, so that
both the structural checks and the cross-field CEL rules are hit, Kubernetes-typed fields
included. "The CRD accepts" is the fake API server's verdict (tests/fakekube: pruning,
defaults, structural validation, CEL), with kubectl's strict field validation.

Two parser-only checks are outside what is drawn, because the API server cannot see them: sizes
(esenas.spec.MAX_SPEC_BYTES; JSON cannot measure itself in CEL) and non-finite numbers (JSON has
none); tests/unit/esenas/test_spec.py covers both. A third kind is drawn but may be the parser's
alone: what the API server refuses only in the pods the operator makes, quantities (a request above
its limit, a negative or zero size; esenas.schema_quantity) and the affinity rules CEL cannot afford
(esenas.schema_affinity), which the operator refuses, naming the spec's field, before it makes
anything (tests/integration/operator/test_trust.py).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from esenas.schema_parse import json_size
from esenas.spec import (
    CONTROLLERS,
    MAX_SPEC_BYTES,
    SEARCH_SPACES,
    TEMPLATES,
    TOPOLOGIES,
    SpecError,
    parse_spec,
)
from esenas_operator.crd import open_api_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.esenas_operator.crdcheck import defaulted, validate

SPEC_SCHEMA = open_api_schema()["properties"]["spec"]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)
_WRONG = st.sampled_from(["x", 1.5, True, [1], {"a": 1}])


def _valid_text(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    pattern, longest = schema.get("pattern"), schema.get("maxLength")
    if pattern:
        return st.from_regex(re.compile(pattern), fullmatch=True).filter(lambda s: longest is None or len(s) <= longest)
    return st.text(alphabet="abcXYZ09-_.", max_size=6)


def _valid_number(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    lo_ok = lo if lo is not None else -5
    small_hi = lo_ok + 64 if hi is None else min(hi, lo_ok + 64)
    bounds = [b for b in (lo, hi) if b is not None and not (b == lo and schema.get("exclusiveMinimum"))]
    if integer:
        core: st.SearchStrategy[Any] = st.integers(int(lo_ok), int(small_hi))
    else:
        core = st.floats(float(lo_ok), float(small_hi), allow_nan=False, exclude_min=bool(schema.get("exclusiveMinimum")))
    return st.one_of(core, core, st.sampled_from(bounds)) if bounds else core


def _invalid_number(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    out = [v for v in ((lo - 1) if lo is not None else None, (hi + 1) if hi is not None else None) if v is not None]
    if lo is not None and schema.get("exclusiveMinimum"):
        out.append(lo)
    if integer:
        out = [int(v) for v in out] + [2.5]
    return st.one_of(st.sampled_from(out), _WRONG) if out else _WRONG


def valid(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values the schema's own checks accept (cross-field rules aside)."""
    if schema.get("x-kubernetes-int-or-string"):
        return st.one_of(st.integers(0, 4), st.sampled_from(["1", "500m", "1Gi", "2.5", "1e3"]), _valid_text(schema))
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return st.dictionaries(st.text(alphabet="abk0", min_size=1, max_size=4), _JSON, max_size=3)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    typ = schema.get("type")
    if typ == "boolean":
        return st.booleans()
    if typ in ("integer", "number"):
        return _valid_number(schema, typ == "integer")
    if typ == "string":
        return _valid_text(schema)
    if typ == "array":
        return st.lists(field(schema["items"], depth + 1, nullable=False), max_size=min(schema.get("maxItems", 3), 2 if depth > 1 else 3))
    if typ == "object" and "properties" in schema:
        return _object(schema, depth)
    return st.dictionaries(st.text(alphabet="kz", min_size=1, max_size=3), field(schema["additionalProperties"], depth + 1, nullable=False), max_size=2)


def invalid(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values the schema's own checks refuse."""
    if schema.get("x-kubernetes-int-or-string"):
        return st.sampled_from(["lots", "1.5 Gi", "", 0.5])
    typ = schema.get("type")
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return st.one_of(st.just({f"k{i}": i for i in range(schema.get("maxProperties", 64) + 1)}), st.just("x"))
    if "enum" in schema:
        return st.one_of(st.just("Bogus"), _WRONG)
    if typ == "boolean":
        return st.sampled_from(["yes", 1])
    if typ in ("integer", "number"):
        return _invalid_number(schema, typ == "integer")
    if typ == "string":
        bad = [7]
        if schema.get("maxLength"):
            bad.append("a" * (schema["maxLength"] + 1))
        if schema.get("pattern"):
            bad.append("not valid!")
        return st.sampled_from(bad)
    if typ == "array":
        most = schema.get("maxItems")
        over = [st.lists(valid(schema["items"], depth + 1), min_size=most + 1, max_size=most + 1)] if most and most <= 16 else []
        return st.one_of(st.lists(invalid(schema["items"], depth + 1), min_size=1, max_size=2), st.just("x"), *over)
    if typ == "object" and "properties" in schema:
        return st.one_of(_object(schema, depth).map(lambda d: {**d, "zzUnknown": 1}), st.just([1]))
    return st.one_of(st.just("x"), st.dictionaries(st.just("k"), invalid(schema["additionalProperties"], depth + 1), min_size=1, max_size=1))


def field(schema: dict[str, Any], depth: int, nullable: bool = True) -> st.SearchStrategy[Any]:
    """Mostly valid, sometimes invalid, sometimes null (which the API server prunes)."""

    def pick(r: int) -> st.SearchStrategy[Any]:
        if r == 0:
            return invalid(schema, depth)
        if r == 1 and nullable:
            return st.none()
        return valid(schema, depth)

    return st.integers(0, 24).flatmap(pick)


def _object(schema: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    props = schema["properties"]
    required = set(schema.get("required", []))
    if depth > 3:  # deep Kubernetes subtrees: only their required fields, to keep examples small
        props = {k: v for k, v in props.items() if k in required}
    fields = {k: field(sub, depth + 1, nullable=k not in required) for k, sub in props.items()}
    return st.fixed_dictionaries(
        {k: v for k, v in fields.items() if k in required}, optional={k: v for k, v in fields.items() if k not in required}
    )


_SMALL = st.integers(0, 40)
#: The fields the cross-field rules read, drawn densely so that every rule is met often, both ways.
_RULED = st.fixed_dictionaries(
    {},
    optional={
        "policy": st.fixed_dictionaries(
            {"topology": st.sampled_from(TOPOLOGIES)},
            optional={
                "template": st.sampled_from(TEMPLATES),
                "partitions": st.integers(1, 8),
                "edges": st.integers(1, 8),
                "hiddenLayers": st.lists(st.integers(1, 8), max_size=2),
                "searchSpace": st.sampled_from(SEARCH_SPACES),
            },
        ),
        "controller": st.fixed_dictionaries(
            {}, optional={"type": st.sampled_from(CONTROLLERS), "populationSize": st.integers(2, 60), "tournamentSize": st.integers(0, 60)}
        ),
        "es": st.fixed_dictionaries(
            {}, optional={"perturbations": st.integers(1, 40), "perturbationsPerWorker": st.sampled_from([1, 3, 250_000]), "topDirections": _SMALL}
        ),
        "workers": st.fixed_dictionaries({}, optional={"replicas": st.sampled_from([0, 1, 5])}),
        "objectives": st.fixed_dictionaries({}, optional={"sizeWeight": st.sampled_from([0.0, 0.5]), "targetSize": st.integers(1, 9)}),
    },
)


def _overlay(spec: Any, ruled: dict[str, Any]) -> Any:
    if not isinstance(spec, dict):
        return spec
    return {**spec, **ruled, "environment": spec.get("environment")} if "environment" in spec else {**spec, **ruled}


_MINIMAL = st.just({"environment": {"id": "Hopper-v5"}})
SPECS = st.one_of(
    field(SPEC_SCHEMA, 0, nullable=False),
    st.tuples(field(SPEC_SCHEMA, 0, nullable=False), _RULED).map(lambda t: _overlay(*t)),
    st.tuples(_MINIMAL, _RULED).map(lambda t: _overlay(*t)),
    st.tuples(_MINIMAL, _RULED).map(lambda t: _overlay(*t)),
)


#: Parser errors about quantities and affinity that the API server refuses only in the pods (see the module doc).
_POD_LEVEL = re.compile(r"^spec\.(workers|aggregator|relays)\.(resources\.|checkpoint\.storageSize: |affinity\.)")


def _job(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "t"}, "spec": spec}


@pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")  # cel-python's parser raises it
def test_parser_and_crd_accept_and_refuse_the_same_specs() -> None:
    seen: dict[bool, int] = {True: 0, False: 0}

    @settings(max_examples=150, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(spec=SPECS)
    def check(spec: Any) -> None:
        assert json_size(spec) <= MAX_SPEC_BYTES
        crd_errors = validate(_job(spec))
        try:
            parsed = parse_spec(spec)
            parser_errors: list[str] = []
        except SpecError as exc:
            parsed, parser_errors = None, [str(e) for e in exc.errors]
        pod_level = bool(parser_errors) and all(_POD_LEVEL.search(e) for e in parser_errors)
        assert (crd_errors == []) == (parser_errors == []) or (crd_errors == [] and pod_level), f"CRD: {crd_errors}\nparser: {parser_errors}"
        if parsed is not None:
            assert parse_spec(defaulted(_job(spec))["spec"]) == parsed, "the API server's defaults change nothing"
        seen[parsed is not None] += 1

    check()
    print(seen)
    assert seen[True] >= 30 and seen[False] >= 30, seen
