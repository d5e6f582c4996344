"""Watch semantics over real chunked HTTP: events strictly after a resourceVersion, 410 Gone
once history is compacted, BOOKMARKs, selectors (with ADDED/DELETED on selector changes),
timeoutSeconds, scopes, and the official Python client's watch helper."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.fakekube.harness import FakeKube
from tests.integration.fakekube.crds import WIDGET_CRD, widget

CMS = "/api/v1/namespaces/default/configmaps"


def _cm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


def _events(fakekube: FakeKube, path: str, **query: Any) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", ""))
            for e in fakekube.client.watch(path, **query)]


def test_watch_after_resource_version_and_noops(fakekube: FakeKube) -> None:
    c = fakekube.client
    c.create(CMS, _cm("a"))
    rv = c.get(CMS)["metadata"]["resourceVersion"]
    c.create(CMS, _cm("b"))
    c.patch(f"{CMS}/a", {"data": {"k": "w"}})
    c.patch(f"{CMS}/a", {"data": {"k": "w"}})  # no-op: no event
    c.create("/apis/apps/v1/namespaces/default/deployments", {
        "metadata": {"name": "other-kind"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    c.delete(f"{CMS}/b")
    events = list(c.watch(CMS, resourceVersion=rv, timeoutSeconds=0.3))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    # Without a resourceVersion: the current state as ADDED, then changes.
    assert _events(fakekube, CMS, timeoutSeconds=0.3) == [("ADDED", "a")]


def test_live_events_and_timeout(fakekube: FakeKube) -> None:
    c = fakekube.client
    rv = c.get(CMS)["metadata"]["resourceVersion"]
    got: list[tuple[str, str]] = []
    done = threading.Event()

    def consume() -> None:
        got.extend(_events(fakekube, CMS, resourceVersion=rv, timeoutSeconds=2))
        done.set()

    started = time.monotonic()
    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.3)
    c.create(CMS, _cm("live"))
    c.delete(f"{CMS}/live")
    assert done.wait(15), "timeoutSeconds ends the stream"
    thread.join()
    assert got == [("ADDED", "live"), ("DELETED", "live")]
    assert time.monotonic() - started >= 1.9


def test_too_old_resource_version_is_gone(fakekube_factory: Any) -> None:
    fakekube: FakeKube = fakekube_factory("--history", "3")
    c = fakekube.client
    rv = c.get(CMS)["metadata"]["resourceVersion"]
    assert _events(fakekube, CMS, resourceVersion=rv, timeoutSeconds=0.2) == []
    for i in range(5):
        c.create(CMS, _cm(f"n{i}"))
    events = list(c.watch(CMS, resourceVersion=rv, timeoutSeconds=0.3))
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert "too old resource version" in status["message"]
    fresh = c.get(CMS)["metadata"]["resourceVersion"]
    c.compact()
    assert list(c.watch(CMS, resourceVersion=fresh, timeoutSeconds=0.3)) == []
    older = list(c.watch(CMS, resourceVersion=str(int(fresh) - 1), timeoutSeconds=0.3))
    assert [e["object"]["code"] for e in older] == [410]


def test_bookmarks_only_when_allowed(fakekube_factory: Any) -> None:
    fakekube: FakeKube = fakekube_factory("--bookmark-interval", "0.2")
    c = fakekube.client
    c.create(CMS, _cm("a"))
    rv = c.get(CMS)["metadata"]["resourceVersion"]
    events = list(c.watch(CMS, resourceVersion=rv, allowWatchBookmarks="true",
                          timeoutSeconds=0.7))
    assert {e["type"] for e in events} == {"BOOKMARK"} and len(events) >= 2
    assert events[-1]["object"]["metadata"]["resourceVersion"] == rv
    assert events[0]["object"]["kind"] == "ConfigMap"
    assert list(c.watch(CMS, resourceVersion=rv, timeoutSeconds=0.3)) == []


def test_selectors_and_scopes(fakekube: FakeKube) -> None:
    c = fakekube.client
    c.create("/api/v1/namespaces", {"metadata": {"name": "two"}})
    rv = c.get(CMS)["metadata"]["resourceVersion"]
    c.create(CMS, _cm("x", app="yes"))
    c.create(CMS, _cm("y", app="no"))
    c.patch(f"{CMS}/y", {"metadata": {"labels": {"app": "yes"}}})  # enters the selector
    c.patch(f"{CMS}/x", {"metadata": {"labels": {"app": "no"}}})  # leaves it
    c.create("/api/v1/namespaces/two/configmaps", _cm("z", app="yes"))
    assert _events(fakekube, CMS, resourceVersion=rv, labelSelector="app=yes",
                   timeoutSeconds=0.3) == [("ADDED", "x"), ("ADDED", "y"), ("DELETED", "x")]
    assert _events(fakekube, CMS, resourceVersion=rv, fieldSelector="metadata.name=y",
                   timeoutSeconds=0.3) == [("ADDED", "y"), ("MODIFIED", "y")]
    everywhere = _events(fakekube, "/api/v1/configmaps", resourceVersion=rv,
                         labelSelector="app=yes", timeoutSeconds=0.3)
    assert everywhere[-1] == ("ADDED", "z") and len(everywhere) == 4
    assert _events(fakekube, "/api/v1/configmaps", resourceVersion=rv,
                   fieldSelector="metadata.namespace=two", timeoutSeconds=0.3) == [("ADDED", "z")]
    assert ("ADDED", "two") in _events(fakekube, "/api/v1/namespaces", timeoutSeconds=0.3)


def test_official_python_client(fakekube: FakeKube) -> None:
    from kubernetes import client, config, watch

    api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(fakekube.kubeconfig))
    # Any: the generated client is typed for its models; the test passes plain dicts too.
    core: Any = client.CoreV1Api(api_client)
    apps: Any = client.AppsV1Api(api_client)
    core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py"), data={}))
    listed = core.list_namespaced_config_map("default")
    assert [i.metadata.name for i in listed.items] == ["py"]
    core.patch_namespaced_config_map("py", "default", {"data": {"a": "b"}})
    watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
    stream = watcher.stream(core.list_namespaced_config_map, "default",
                            resource_version=listed.metadata.resource_version,
                            timeout_seconds=1)
    assert [(e["type"], e["object"].data) for e in stream] == [("MODIFIED", {"a": "b"})]
    apps.create_namespaced_deployment("default", {
        "metadata": {"name": "d"}, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}},
                         "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    apps.patch_namespaced_deployment_scale("d", "default", {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("d", "default").spec.replicas == 3
    err = None
    try:
        core.read_namespaced_config_map("missing", "default")
    except client.ApiException as exc:
        err = exc
    assert err is not None and err.status == 404


def test_crd_deletion_ends_its_watches(fakekube: FakeKube) -> None:
    c = fakekube.client
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    c.create(crds, WIDGET_CRD)
    c.create("/apis/fake.test/v1/namespaces/default/widgets", widget("w"))
    got: list[tuple[str, str]] = []
    done = threading.Event()

    def consume() -> None:
        got.extend(_events(fakekube, "/apis/fake.test/v1/widgets", timeoutSeconds=30))
        done.set()

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.3)
    c.delete(f"{crds}/widgets.fake.test")
    assert done.wait(10), "the watch ends when its resource goes away"
    thread.join()
    assert got == [("ADDED", "w"), ("DELETED", "w")]
