"""API semantics of the fake server over real HTTP: resourceVersions and no-op writes,
generation, subresources, errors as Status, finalizers, garbage collection, CRD lifecycle."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakekube.harness import ApiStatusError, FakeKube
from tests.integration.fakekube.crds import WIDGET_CRD, widget

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
WIDGETS = "/apis/fake.test/v1/namespaces/default/widgets"


def _cm(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta},
            "data": {"k": "v"}}


def _deploy(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


def _error(call: Any) -> ApiStatusError:
    with pytest.raises(ApiStatusError) as info:
        call()
    assert info.value.status["kind"] == "Status" and info.value.status["status"] == "Failure"
    return info.value


def test_resource_version_is_global_and_noops_do_not_write(fakekube: FakeKube) -> None:
    c = fakekube.client
    a = c.create(CMS, _cm("a"))
    b = c.create(DEPLOYS, _deploy("b"))
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    assert a["metadata"]["uid"] and a["metadata"]["creationTimestamp"]
    listed = c.get(CMS)
    assert listed["metadata"]["resourceVersion"] == b["metadata"]["resourceVersion"]

    writes = c.stats()["totals"]["writes"]
    same = c.replace(f"{CMS}/a", a)
    assert same["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
    same = c.patch(f"{CMS}/a", {"data": {"k": "v"}})
    assert same["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
    assert c.stats()["totals"]["writes"] == writes, "no-op writes are not writes"

    changed = c.patch(f"{CMS}/a", {"data": {"k": "w"}})
    assert int(changed["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"])
    stats = c.stats()
    assert stats["writes"]["patch"]["configmaps"] == 1
    assert stats["requests"]["patch"]["configmaps"] == 2
    assert stats["requests"]["create"]["apps/deployments"] == 1

    stale = _error(lambda: c.replace(f"{CMS}/a", a))
    assert (stale.code, stale.reason) == (409, "Conflict")
    assert "the object has been modified" in stale.status["message"]


def test_generation_and_status_subresource(fakekube: FakeKube) -> None:
    c = fakekube.client
    d = c.create(DEPLOYS, {**_deploy("d"), "status": {"replicas": 5}})
    assert d["metadata"]["generation"] == 1 and d["status"] == {}, "create drops .status"
    d = c.patch(f"{DEPLOYS}/d", {"metadata": {"labels": {"x": "y"}}})
    assert d["metadata"]["generation"] == 1, "metadata changes keep generation"
    d = c.patch(f"{DEPLOYS}/d", {"spec": {"replicas": 3}, "status": {"replicas": 9}})
    assert d["metadata"]["generation"] == 2 and d["status"] == {}, "main endpoint ignores status"
    d = c.patch(f"{DEPLOYS}/d/status", {"spec": {"replicas": 7}, "status": {"readyReplicas": 2}})
    assert d["spec"]["replicas"] == 3 and d["status"] == {"readyReplicas": 2}
    assert d["metadata"]["generation"] == 2, "status writes keep generation"

    scale = c.get(f"{DEPLOYS}/d/scale")
    assert scale["spec"]["replicas"] == 3 and scale["status"]["selector"] == "app=d"
    c.replace(f"{DEPLOYS}/d/scale", {**scale, "spec": {"replicas": 4}})
    c.patch(f"{DEPLOYS}/d/scale", {"spec": {"replicas": 6}})
    d = c.get(f"{DEPLOYS}/d")
    assert d["spec"]["replicas"] == 6 and d["metadata"]["generation"] == 4
    bad = _error(lambda: c.patch(f"{DEPLOYS}/d/scale", {"spec": {"replicas": -1}}))
    assert bad.code == 422

    c.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)
    w = c.create(WIDGETS, {**widget("w", size=2), "status": {"phase": "Fake"}})
    assert "status" not in w
    w = c.patch(f"{WIDGETS}/w/status", {"status": {"phase": "Ready", "size": 2}})
    assert w["status"]["phase"] == "Ready" and w["metadata"]["generation"] == 1
    w = c.patch(f"{WIDGETS}/w", {"metadata": {"annotations": {"a": "b"}}})
    assert w["metadata"]["generation"] == 1
    unconditional = {k: v for k, v in w.items() if k != "metadata"}
    unconditional["metadata"] = {"name": "w"}
    assert _error(lambda: c.replace(f"{WIDGETS}/w", unconditional)).code == 422
    w = c.patch(f"{WIDGETS}/w/scale", {"spec": {"replicas": 8}})
    assert w["spec"]["replicas"] == 8 and w["status"]["replicas"] == 2
    assert c.get(f"{WIDGETS}/w")["metadata"]["generation"] == 2


def test_errors_are_status_objects(fakekube: FakeKube) -> None:
    c = fakekube.client
    missing = _error(lambda: c.get(f"{CMS}/nope"))
    assert (missing.code, missing.reason) == (404, "NotFound")
    assert missing.status["details"] == {"name": "nope", "kind": "configmaps"}
    assert missing.status["message"] == 'configmaps "nope" not found'
    c.create(CMS, _cm("x"))
    dup = _error(lambda: c.create(CMS, _cm("x")))
    assert (dup.code, dup.reason) == (409, "AlreadyExists")
    bad_name = _error(lambda: c.create(CMS, _cm("Not_Valid")))
    assert bad_name.code == 422 and bad_name.status["details"]["causes"][0]["field"] == (
        "metadata.name")
    wrong_ns = _error(lambda: c.create(CMS, _cm("y", namespace="other")))
    assert wrong_ns.code == 400
    no_ns = _error(lambda: c.create("/api/v1/namespaces/ghost/configmaps", _cm("z")))
    assert no_ns.code == 404 and 'namespaces "ghost" not found' in no_ns.status["message"]
    failed_test = _error(lambda: c.patch(f"{CMS}/x", [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}], kind="json"))
    assert failed_test.code == 422
    assert "finalizers" not in c.get(f"{CMS}/x")["metadata"], "a failed test applies nothing"
    unsupported = _error(lambda: c.request("PATCH", f"{CMS}/x", {}, content_type="text/plain"))
    assert unsupported.code == 415
    assert _error(lambda: c.request("POST", f"{CMS}/x", {})).code == 405
    bad_deploy = _deploy("bad")
    bad_deploy["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    assert _error(lambda: c.create(DEPLOYS, bad_deploy)).code == 422
    assert _error(lambda: c.get("/apis/nope.io/v1/things")).code == 404


def test_generate_name_dry_run_and_server_side_apply(fakekube: FakeKube) -> None:
    c = fakekube.client
    made = c.create(CMS, {"metadata": {"generateName": "gen-"}, "data": {}})
    assert made["metadata"]["name"].startswith("gen-") and len(made["metadata"]["name"]) == 9
    dry = c.create(CMS, _cm("dry"), dryRun="All")
    assert dry["metadata"]["name"] == "dry"
    assert _error(lambda: c.get(f"{CMS}/dry")).code == 404
    applied = c.request("PATCH", f"{CMS}/ssa", {"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": {"name": "ssa"}, "data": {"a": "1"}},
                        content_type="application/apply-patch+yaml",
                        query={"fieldManager": "test"})
    assert applied["data"] == {"a": "1"}
    svc = c.create("/api/v1/namespaces/default/services", {"metadata": {"name": "s"}, "spec": {
        "ports": [{"name": "grpc", "port": 50051}], "selector": {"app": "s"}}})
    assert svc["spec"]["clusterIP"].startswith("10.") and svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"][0]["targetPort"] == 50051


def test_list_pagination_and_selectors(fakekube: FakeKube) -> None:
    c = fakekube.client
    for i in range(5):
        c.create(CMS, _cm(f"cm-{i}", labels={"tier": "a" if i % 2 else "b", "i": str(i)}))
    first = c.get(CMS, limit=2)
    assert [o["metadata"]["name"] for o in first["items"]] == ["cm-0", "cm-1"]
    token = first["metadata"]["continue"]
    rest = c.get(CMS, limit=10, **{"continue": token})
    assert [o["metadata"]["name"] for o in rest["items"]] == ["cm-2", "cm-3", "cm-4"]
    assert "continue" not in rest["metadata"]
    assert [o["metadata"]["name"] for o in c.list(CMS, labelSelector="tier=a")] == [
        "cm-1", "cm-3"]
    assert len(c.list(CMS, labelSelector="tier!=a,i in (0,1,2)")) == 2
    assert len(c.list(CMS, labelSelector="!tier")) == 0
    assert [o["metadata"]["name"] for o in c.list(CMS, fieldSelector="metadata.name=cm-4")] == [
        "cm-4"]
    unsupported = _error(lambda: c.list(CMS, fieldSelector="data.k=v"))
    assert (unsupported.code, unsupported.status["message"]) == (
        400, "field label not supported: data.k")
    c.create("/api/v1/namespaces", {"metadata": {"name": "other"}})
    c.create("/api/v1/namespaces/other/configmaps", _cm("elsewhere"))
    everywhere = c.list("/api/v1/configmaps", fieldSelector="metadata.namespace=other")
    assert [o["metadata"]["name"] for o in everywhere] == ["elsewhere"]
    assert len(c.list("/api/v1/configmaps")) == 6


def test_finalizers_and_garbage_collection(fakekube: FakeKube) -> None:
    c = fakekube.client
    owner = c.create(CMS, _cm("owner", finalizers=["test/hold"]))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
           "uid": owner["metadata"]["uid"]}
    c.create(CMS, _cm("dep", ownerReferences=[ref]))
    c.create(CMS, _cm("dep-held", ownerReferences=[ref], finalizers=["test/dep"]))
    c.create(CMS, _cm("grandchild", ownerReferences=[{
        **ref, "name": "dep", "uid": c.get(f"{CMS}/dep")["metadata"]["uid"]}]))

    deleting = c.delete(f"{CMS}/owner")
    assert deleting["metadata"]["deletionTimestamp"]
    assert _error(lambda: c.patch(f"{CMS}/owner", {"metadata": {"finalizers": [
        "test/hold", "new"]}})).code == 422, "no new finalizers while deleting"
    c.patch(f"{CMS}/owner", {"metadata": {"finalizers": None}})
    assert _error(lambda: c.get(f"{CMS}/owner")).code == 404
    assert _error(lambda: c.get(f"{CMS}/dep")).code == 404
    assert _error(lambda: c.get(f"{CMS}/grandchild")).code == 404, "cascade is recursive"
    held = c.get(f"{CMS}/dep-held")
    assert held["metadata"]["deletionTimestamp"], "the collector respects finalizers"

    # Orphan: dependents stay and lose the owner reference.
    parent = c.create(CMS, _cm("parent"))
    pref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "parent",
            "uid": parent["metadata"]["uid"]}
    c.create(CMS, _cm("kid", ownerReferences=[pref]))
    c.delete(f"{CMS}/parent", {"propagationPolicy": "Orphan"})
    assert "ownerReferences" not in c.get(f"{CMS}/kid")["metadata"]

    # Foreground: the owner waits (with foregroundDeletion) until its dependents are gone.
    top = c.create(CMS, _cm("top"))
    tref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "top", "uid": top["metadata"]["uid"]}
    c.create(CMS, _cm("blocker", ownerReferences=[tref], finalizers=["test/slow"]))
    c.delete(f"{CMS}/top", propagationPolicy="Foreground")
    assert "foregroundDeletion" in c.get(f"{CMS}/top")["metadata"]["finalizers"]
    c.patch(f"{CMS}/blocker", {"metadata": {"finalizers": []}})
    assert _error(lambda: c.get(f"{CMS}/top")).code == 404

    # A dependent created after its owner went (a controller's stale cache) is collected at once,
    # even when a new owner of the same name exists: owners are matched by uid.
    c.create(CMS, _cm("top"))
    late = c.create(CMS, _cm("late", ownerReferences=[tref]))
    assert late["metadata"]["uid"]
    assert _error(lambda: c.get(f"{CMS}/late")).code == 404
    live = {**tref, "uid": c.get(f"{CMS}/top")["metadata"]["uid"]}
    c.create(CMS, _cm("both", ownerReferences=[tref, live]))
    assert c.get(f"{CMS}/both")["metadata"]["ownerReferences"] == [tref, live], "one live owner keeps it"

    gone = c.create(CMS, _cm("precond"))
    wrong = _error(lambda: c.delete(f"{CMS}/precond", {"preconditions": {"uid": "x"}}))
    assert wrong.code == 409
    c.delete(f"{CMS}/precond", {"preconditions": {"uid": gone["metadata"]["uid"]}})


def test_namespace_and_crd_deletion_remove_contents(fakekube: FakeKube) -> None:
    c = fakekube.client
    c.create("/api/v1/namespaces", {"metadata": {"name": "tmp"}})
    c.create("/api/v1/namespaces/tmp/configmaps", _cm("inside"))
    c.delete("/api/v1/namespaces/tmp")
    assert _error(lambda: c.get("/api/v1/namespaces/tmp")).code == 404
    assert c.list("/api/v1/configmaps", fieldSelector="metadata.namespace=tmp") == []

    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    crd = c.create(crds, WIDGET_CRD)
    conditions = {x["type"]: x["status"] for x in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    resources = c.get("/apis/fake.test/v1")["resources"]
    assert {r["name"] for r in resources} == {"widgets", "widgets/status", "widgets/scale"}
    c.create(WIDGETS, widget("w"))
    c.delete(f"{crds}/widgets.fake.test")
    assert _error(lambda: c.get(WIDGETS)).code == 404
    assert "fake.test" not in {g["name"] for g in c.get("/apis")["groups"]}
    c.create(crds, WIDGET_CRD)
    assert c.list(WIDGETS) == [], "a recreated CRD starts empty"


def test_pod_eviction_deletes_the_pod(fakekube: FakeKube) -> None:
    c = fakekube.client
    pods = "/api/v1/namespaces/default/pods"
    pod = c.create(pods, {"metadata": {"name": "p"},
                          "spec": {"containers": [{"name": "c", "image": "i"}]}})
    assert pod["status"]["phase"] == "Pending"
    resources = {r["name"] for r in c.get("/api/v1")["resources"]}
    assert {"pods/eviction", "pods/status"} <= resources
    done = c.create(f"{pods}/p/eviction", {"apiVersion": "policy/v1", "kind": "Eviction",
                                            "metadata": {"name": "p"}})
    assert done["status"] == "Success"
    assert _error(lambda: c.get(f"{pods}/p")).code == 404


def test_validation_ratchets_unchanged_fields(fakekube: FakeKube) -> None:
    c = fakekube.client
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    c.create(crds, WIDGET_CRD)
    c.create(WIDGETS, widget("w", size=50, extra={"note": "x"}))
    stricter = c.get(f"{crds}/widgets.fake.test")
    spec_schema = stricter["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"]
    spec_schema["x-kubernetes-validations"].append(
        {"rule": "self.size <= 10", "message": "spec.size must be <= 10 now"})
    c.replace(f"{crds}/widgets.fake.test", stricter)
    # The object now breaks the rule, but writes that leave spec alone still pass...
    c.patch(f"{WIDGETS}/w/status", {"status": {"phase": "Ready"}})
    c.patch(f"{WIDGETS}/w", {"metadata": {"labels": {"a": "b"}}})
    # ...while a write that changes spec must satisfy it.
    rejected = _error(lambda: c.patch(f"{WIDGETS}/w", {"spec": {"color": "blue"}}))
    assert rejected.code == 422 and "spec.size must be <= 10 now" in rejected.status["message"]
    c.patch(f"{WIDGETS}/w", {"spec": {"size": 5, "color": "blue"}})


def test_delete_collection_and_events_apis(fakekube: FakeKube) -> None:
    c = fakekube.client
    for i in range(4):
        c.create(CMS, _cm(f"col-{i}", labels={"batch": "1" if i < 3 else "2"}))
    removed = c.delete(CMS, labelSelector="batch=1")
    assert sorted(o["metadata"]["name"] for o in removed["items"]) == ["col-0", "col-1", "col-2"]
    assert [o["metadata"]["name"] for o in c.list(CMS)] == ["col-3"]
    assert c.stats()["requests"]["deletecollection"]["configmaps"] == 1

    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "col-3", "namespace": "default"}
    core = c.create("/api/v1/namespaces/default/events", {
        "metadata": {"generateName": "col-3."}, "involvedObject": ref, "reason": "Tested",
        "message": "core event", "type": "Normal"})
    new = c.create("/apis/events.k8s.io/v1/namespaces/default/events", {
        "metadata": {"name": "col-3.new"}, "regarding": ref, "reason": "Tested",
        "note": "events.k8s.io event", "type": "Normal", "action": "Test",
        "reportingController": "tests", "reportingInstance": "tests-1",
        "eventTime": "2026-01-01T00:00:00.000000Z"})
    assert core["metadata"]["name"].startswith("col-3.") and new["kind"] == "Event"
    found = c.list("/api/v1/events", fieldSelector="involvedObject.name=col-3,reason=Tested")
    assert [e["message"] for e in found] == ["core event"]
    assert [e["note"] for e in c.list("/apis/events.k8s.io/v1/events")] == [
        "events.k8s.io event"]
