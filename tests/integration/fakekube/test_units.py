"""The fake server's pure pieces, in-process: patch formats and their directives, selectors,
structural schema handling, CEL typing, printer-column JSONPath and ages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakekube.cel import check_rules
from tests.fakekube.errors import ApiError
from tests.fakekube.patching import json_patch, merge_patch, strategic_merge
from tests.fakekube.schema import Outcome, process
from tests.fakekube.selectors import field_matcher, label_matcher
from tests.fakekube.tables import human_duration, jsonpath


def test_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}
    assert merge_patch(target, {"c": None}) == {"a": "b"}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}, "the target is not mutated"


def test_json_patch_operations_and_failures() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    out = json_patch(doc, [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "add", "path": "/a/b/0", "value": 0},
        {"op": "replace", "path": "/c", "value": "y"},
        {"op": "copy", "from": "/c", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e~1f"},
        {"op": "remove", "path": "/a/b/1"},
        {"op": "test", "path": "/e~1f", "value": "y"},
    ])
    assert out == {"a": {"b": [0, 2, 3]}, "c": "y", "e/f": "y"}
    assert doc == {"a": {"b": [1, 2]}, "c": "x"}
    for ops in ([{"op": "test", "path": "/c", "value": "nope"}],
                [{"op": "remove", "path": "/missing"}],
                [{"op": "replace", "path": "/missing", "value": 1}],
                [{"op": "add", "path": "/a/b/9", "value": 1}]):
        with pytest.raises(ApiError) as info:
            json_patch(doc, ops)
        assert info.value.code == 422
    with pytest.raises(ApiError) as bad:
        json_patch(doc, {"op": "add"})
    assert bad.value.code == 400


def test_strategic_merge_lists_and_directives() -> None:
    pod = {"spec": {"containers": [
        {"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}],
         "ports": [{"containerPort": 80, "name": "http"}]},
        {"name": "b", "image": "2"}],
        "volumes": [{"name": "v", "emptyDir": {}}]},
        "metadata": {"finalizers": ["f1"]}}
    out = strategic_merge(pod, {
        "metadata": {"finalizers": ["f2"], "$deleteFromPrimitiveList/finalizers": ["f1"]},
        "spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [
                {"name": "a", "env": [{"name": "Y", "value": "2"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                {"name": "b", "$patch": "delete"},
                {"name": "c", "image": "3"}],
            "volumes": [{"name": "v", "$patch": "replace", "configMap": {"name": "cm"}}],
        }})
    a = out["spec"]["containers"][0]
    assert [c["name"] for c in out["spec"]["containers"]] == ["a", "c"]
    assert a["image"] == "1" and [e["name"] for e in a["env"]] == ["X", "Y"]
    assert a["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert out["spec"]["volumes"] == [{"name": "v", "configMap": {"name": "cm"}}]
    assert out["metadata"]["finalizers"] == ["f2"]
    assert "$setElementOrder/containers" not in out["spec"]
    kept = strategic_merge({"spec": {"a": 1, "b": 2}}, {"spec": {"$retainKeys": ["b"], "b": 3}})
    assert kept == {"spec": {"b": 3}}
    replaced = strategic_merge({"x": {"a": 1}}, {"x": {"$patch": "replace", "b": 2}})
    assert replaced == {"x": {"b": 2}}
    assert strategic_merge({"args": ["a", "b"]}, {"args": ["c"]}) == {"args": ["c"]}


def test_selectors() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "n", "namespace": "ns",
                                        "labels": {"app": "x", "tier": "web"}},
                           "status": {"phase": "Running"}, "spec": {"flag": True}}
    yes = ["app=x", "app==x", "app!=y", "app in (x, y)", "tier notin (db)", "app", "!missing",
           "app=x,tier=web", ""]
    no = ["app=y", "app in (y,z)", "tier notin (web)", "missing", "!app", "app=x,tier=db"]
    assert all(label_matcher(s)(obj) for s in yes)
    assert not any(label_matcher(s)(obj) for s in no)
    assert field_matcher("metadata.name=n,metadata.namespace!=other")(obj)
    assert field_matcher("status.phase=Running,spec.flag=true")(obj)
    assert not field_matcher("spec.nodeName=node-1")(obj)
    assert field_matcher("spec.nodeName=")(obj), "a missing field compares as empty"
    with pytest.raises(ApiError):
        label_matcher("a b c")
    with pytest.raises(ApiError):
        field_matcher("metadata.name")


SCHEMA: dict[str, Any] = {"type": "object", "properties": {"spec": {
    "type": "object",
    "required": ["n"],
    "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 5},
        "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
        "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
        "port": {"x-kubernetes-int-or-string": True},
        "maybe": {"type": "string", "nullable": True},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "nested": {"type": "object", "default": {},
                   "properties": {"depth": {"type": "integer", "default": 3}}},
    },
}}}


def _spec(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "o"}, "spec": spec}


def test_schema_prunes_defaults_and_validates() -> None:
    obj, out = process(_spec(n=2, port="http", maybe=None, free={"any": {"thing": 1}},
                             labels={"k": "v"}, extra=1, tags=None), SCHEMA)
    assert out.causes == [] and out.unknown == ["spec.extra"]
    assert obj["spec"] == {"n": 2, "port": "http", "maybe": None, "free": {"any": {"thing": 1}},
                           "labels": {"k": "v"}, "mode": "a", "nested": {"depth": 3}}
    _, out = process(_spec(n=9, ratio=0, name="ABCDEFG", mode="c", port=1.5, tags=["a", 1, "c"],
                           labels={"k": 1}), SCHEMA)
    fields = {c["field"]: c["message"] for c in out.causes}
    assert "less than or equal to 5" in fields["spec.n"]
    assert "greater than 0" in fields["spec.ratio"]
    assert fields["spec.name"].startswith("Too long") or "should match" in fields["spec.name"]
    assert 'Unsupported value: "c"' in fields["spec.mode"]
    assert "int-or-string" in fields["spec.port"]
    assert "must have at most 2 items" in fields["spec.tags"]
    assert "must be of type string" in fields["spec.tags[1]"]
    assert "must be of type string" in fields["spec.labels.k"]
    _, out = process(_spec(), SCHEMA)
    assert out.causes[0]["field"] == "spec.n" and out.causes[0]["message"] == "Required value"


def test_cel_numbers_are_doubles_and_transition_rules_need_old() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {
        "lo": {"type": "number"}, "hi": {"type": "number"}, "id": {"type": "string"}},
        "x-kubernetes-validations": [
            {"rule": "self.lo <= self.hi", "message": "lo must be <= hi"},
            {"rule": "self.lo == 0.0 || has(self.id)", "message": "id needed"},
            {"rule": "self.id == oldSelf.id", "message": "id is immutable",
             "reason": "FieldValueForbidden", "fieldPath": ".id"}]}
    out = Outcome()
    check_rules({"lo": 0, "hi": 1}, None, schema, "spec", out)
    assert out.causes == [], "ints in number fields compare as doubles; oldSelf skipped"
    out = Outcome()
    check_rules({"lo": 2, "hi": 1, "id": "a"}, {"lo": 0, "hi": 1, "id": "b"}, schema, "spec", out)
    assert [(c["field"], c["reason"]) for c in out.causes] == [
        ("spec", "FieldValueInvalid"), ("spec.id", "FieldValueForbidden")]
    assert out.causes[1]["message"] == "Forbidden: id is immutable"
    out = Outcome()
    check_rules({"lo": 2, "hi": 1}, {"lo": 2, "hi": 1}, schema, "spec", out)
    assert out.causes == [], "unchanged values are ratcheted"


def test_tables_helpers() -> None:
    assert [human_duration(s) for s in (5, 119, 150, 600, 3 * 3600 + 60, 30 * 3600, 3 * 86400)
            ] == ["5s", "119s", "2m30s", "10m", "3h1m", "30h", "3d"]
    obj = {"status": {"conditions": [{"type": "A", "status": "False"},
                                     {"type": "Ready", "status": "True"}],
                      "list": [{"v": 1}]}}
    assert jsonpath(obj, '.status.conditions[?(@.type=="Ready")].status') == "True"
    assert jsonpath(obj, ".status.list[0].v") == 1
    assert jsonpath(obj, ".status.missing.deeper") is None
