"""Server-side apply and managedFields in the fake server, as a real one behaves: an apply owns
what it sends, removes what it no longer sends, keeps other managers' fields, and conflicts
unless forced. Unit tests on the in-process Cluster, then the HTTP rules and the real kubectl."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from tests.fakekube.cluster import APPLY, MERGE, Cluster
from tests.fakekube.errors import ApiError
from tests.fakekube.harness import ApiStatusError, FakeKube
from tests.fakekube.managed import from_fields_v1, leaves, to_fields_v1
from tests.fakekube.registry import ResourceType

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def _deploy(**pod: Any) -> dict[str, Any]:
    labels = {"app": "w"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "worker", "image": "img:1",
                                     "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                                                   "limits": {"memory": "2Gi"}}}], **pod}}},
    }


def _rt(cluster: Cluster) -> ResourceType:
    rt = cluster.registry.get("apps", "v1", "deployments")
    assert rt is not None
    return rt


def _apply(cluster: Cluster, obj: dict[str, Any], manager: str = "op", force: bool = False) -> dict[str, Any]:
    out, _ = cluster.patch(_rt(cluster), "default", obj["metadata"]["name"], APPLY, copy.deepcopy(obj),
                           manager=manager, force=force)
    return out


def _managers(obj: dict[str, Any]) -> dict[tuple[str, str], set[tuple[str, ...]]]:
    return {(e["manager"], e["operation"]): from_fields_v1(e["fieldsV1"]) for e in obj["metadata"]["managedFields"]}


OPTIONAL: dict[str, Any] = {
    "nodeSelector": {"disk": "ssd", "zone": "a"},
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}},
    "priorityClassName": "high",
}


@pytest.mark.parametrize("field", sorted(OPTIONAL))
def test_an_apply_that_leaves_a_field_out_removes_it(field: str) -> None:
    cluster = Cluster()
    first = _apply(cluster, _deploy(**{field: OPTIONAL[field]}))
    assert first["spec"]["template"]["spec"][field] == OPTIONAL[field]
    second = _apply(cluster, _deploy())
    assert field not in second["spec"]["template"]["spec"]
    assert second["metadata"]["generation"] == 2
    assert ("f:spec", "f:template", "f:spec", f"f:{field}") not in next(iter(_managers(second).values()))


def test_narrowed_resources_and_map_keys_go_away() -> None:
    cluster = Cluster()
    _apply(cluster, _deploy(nodeSelector={"disk": "ssd", "zone": "a"}))
    narrow = _deploy(nodeSelector={"disk": "ssd"})
    narrow["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    out = _apply(cluster, narrow)
    pod = out["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "1"}}


def test_other_managers_fields_stay_and_values_they_own_conflict() -> None:
    cluster = Cluster()
    _apply(cluster, _deploy())
    rt = _rt(cluster)
    # Another writer (kubectl label / patch) adds a label and changes the replicas.
    cluster.patch(rt, "default", "w", MERGE, {"metadata": {"labels": {"team": "rl"}}, "spec": {"replicas": 5}},
                  manager="kubectl-patch")
    with pytest.raises(ApiError) as info:  # replicas 2 again, owned by kubectl-patch now
        cluster.patch(rt, "default", "w", APPLY, _deploy(), manager="op")
    assert info.value.code == 409 and info.value.reason == "Conflict"
    assert cluster.get(rt, "default", "w")["spec"]["replicas"] == 5, "a conflicting apply changes nothing"
    assert 'conflict with "kubectl-patch": .spec.replicas' in info.value.message
    forced = _apply(cluster, _deploy(), force=True)
    assert forced["spec"]["replicas"] == 2
    assert forced["metadata"]["labels"] == {"app": "w", "team": "rl"}, "another manager's label stays"
    owners = _managers(forced)
    assert ("f:spec", "f:replicas") in owners[("op", "Apply")]
    assert owners[("kubectl-patch", "Update")] == {("f:metadata", "f:labels", "f:team")}


def test_a_field_both_managers_set_survives_one_dropping_it() -> None:
    cluster = Cluster()
    _apply(cluster, _deploy(priorityClassName="high"), manager="a")
    _apply(cluster, _deploy(priorityClassName="high"), manager="b")  # same value: shared, no conflict
    out = _apply(cluster, _deploy(), manager="a")
    assert out["spec"]["template"]["spec"]["priorityClassName"] == "high"
    out = _apply(cluster, _deploy(), manager="b")
    assert "priorityClassName" not in out["spec"]["template"]["spec"]


def test_an_unchanged_apply_is_a_no_op_and_dry_run_persists_nothing() -> None:
    cluster = Cluster()
    first = _apply(cluster, _deploy())
    again = _apply(cluster, _deploy())
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    rt = _rt(cluster)
    dry, _ = cluster.patch(rt, "default", "w", APPLY, _deploy(nodeSelector={"a": "b"}), manager="op", dry_run=True)
    assert dry["spec"]["template"]["spec"]["nodeSelector"] == {"a": "b"}
    assert "nodeSelector" not in cluster.get(rt, "default", "w")["spec"]["template"]["spec"]
    made, _ = cluster.patch(rt, "default", "new", APPLY, {**_deploy(), "metadata": {"name": "new", "labels": {"app": "w"}}},
                            manager="op", dry_run=True)
    assert made["metadata"]["name"] == "new"
    with pytest.raises(ApiError):
        cluster.get(rt, "default", "new")


def test_an_apply_that_creates_owns_only_what_it_sent() -> None:
    cluster = Cluster()
    out = _apply(cluster, _deploy())
    (entry,) = out["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == ("op", "Apply", "apps/v1")
    owned = from_fields_v1(entry["fieldsV1"])
    containers = ("f:spec", "f:template", "f:spec", "f:containers")
    assert (*containers, 'k:{"name":"worker"}') in owned
    assert (*containers, 'k:{"name":"worker"}', "f:image") in owned
    assert ("f:metadata", "f:labels", "f:app") in owned
    assert not any(p[:2] == ("f:metadata", "f:name") for p in owned)
    assert entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"worker"}']["."] == {}


def test_fields_v1_round_trip_and_leaves() -> None:
    obj = {"metadata": {"name": "x", "labels": {"a": "1"}, "finalizers": ["f"]},
           "spec": {"volumes": [{"name": "v", "emptyDir": {}}], "args": ["a", "b"]}}
    found = leaves(obj)
    assert found[("f:spec", "f:args")] == ["a", "b"], "a list without keys is atomic"
    assert found[("f:spec", "f:volumes", 'k:{"name":"v"}', "f:emptyDir")] == {}
    assert ("f:metadata", "f:finalizers", 'v:"f"') in found
    assert from_fields_v1(to_fields_v1(found)) == set(found)


def test_apply_over_http_needs_a_field_manager_and_force_only_applies(fakekube: FakeKube) -> None:
    c = fakekube.client
    with pytest.raises(ApiStatusError) as info:
        c.patch(f"{DEPLOYS}/w", _deploy(), kind="apply")
    assert info.value.code == 422 and "fieldManager: Required value" in json.dumps(info.value.status)
    with pytest.raises(ApiStatusError) as info:
        c.patch(f"{DEPLOYS}/w", {"spec": {}}, force="true")
    assert info.value.code == 422
    made = c.patch(f"{DEPLOYS}/w", _deploy(tolerations=OPTIONAL["tolerations"]), kind="apply",
                   fieldManager="esenas-operator", force="true")
    assert made["spec"]["template"]["spec"]["tolerations"] == OPTIONAL["tolerations"]
    after = c.patch(f"{DEPLOYS}/w", _deploy(), kind="apply", fieldManager="esenas-operator", force="true")
    assert "tolerations" not in after["spec"]["template"]["spec"]
    # The real kubectl sees the same managers (kubectl get --show-managed-fields).
    shown = yaml.safe_load(fakekube.kubectl("get", "deploy/w", "-o", "yaml", "--show-managed-fields").stdout)
    assert [e["manager"] for e in shown["metadata"]["managedFields"]] == ["esenas-operator"]
    # kubectl's own server-side apply: a second manager whose fields stay beside ours.
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "annotations": {"owner": "me"}}}
    fakekube.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(doc))
    again = c.patch(f"{DEPLOYS}/w", _deploy(), kind="apply", fieldManager="esenas-operator", force="true")
    assert again["metadata"]["annotations"] == {"owner": "me"}
    assert {e["manager"] for e in again["metadata"]["managedFields"]} == {"esenas-operator", "kubectl"}


@pytest.mark.parametrize(("pod", "code", "words"), [
    ({"containers": [{"name": "worker", "image": "i", "resources": {"requests": {"cpu": "lots"}}}]}, 400,
     "cannot be handled as a Deployment: quantities must match the regular expression"),
    ({"containers": [{"name": "worker", "image": "i", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}, 422,
     "spec.template.spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"),
    ({"tolerations": [{"key": "k", "operator": "Sideways"}]}, 422,
     'spec.template.spec.tolerations[0].operator: Unsupported value: "Sideways": supported values: "Equal", "Exists"'),
    ({"tolerations": [{"key": "k", "effect": "Sometimes"}]}, 422, "spec.template.spec.tolerations[0].effect: Unsupported value"),
    ({"nodeSelector": {"disk": "not ok!"}}, 422, "spec.template.spec.nodeSelector: Invalid value"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "a", "operator": "Near"}]}]}}}}, 422, 'operator: Unsupported value: "Near"'),
    ({"priorityClassName": "Not_A_Name"}, 422, "spec.template.spec.priorityClassName: Invalid value"),
])
def test_pod_spec_fields_are_validated_as_a_real_server_does(pod: dict[str, Any], code: int, words: str) -> None:
    cluster = Cluster()
    doc = _deploy(**pod)
    with pytest.raises(ApiError) as info:
        cluster.create(_rt(cluster), "default", doc, dry_run=True)
    assert info.value.code == code and words in info.value.message, info.value.message
    assert cluster.store.items(_rt(cluster).key) == [], "nothing persisted"


def test_valid_quantities_parse() -> None:
    from tests.fakekube.podvalidation import quantity
    assert quantity("500m", "Pod") * 2 == 1
    assert quantity("1Gi", "Pod") == 2**30 and quantity("1e3", "Pod") == 1000 and quantity(2, "Pod") == 2
