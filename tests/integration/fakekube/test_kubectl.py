"""The real kubectl binary against the fake API server: apply the project's CRD and
examples, get (table, json, watch), scale, patch, explain, delete with finalizers/cascade."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import yaml

from tests.fakekube.harness import FakeKube, kubectl_binary
from tests.integration.fakekube.crds import EXAMPLES, WIDGET_CRD, dump, esenas_crd_text, widget

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "main", "image": "busybox", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "busybox"},
        ]}},
    },
}


def _apply_esenas(fakekube: FakeKube) -> list[str]:
    fakekube.kubectl("apply", "-f", "-", input=esenas_crd_text())
    assert EXAMPLES, "manifests/examples/*.yaml must exist"
    args = [a for path in EXAMPLES for a in ("-f", str(path))]
    fakekube.kubectl("apply", *args)
    return [yaml.safe_load(p.read_text())["metadata"]["name"] for p in EXAMPLES]


def test_apply_crd_and_examples_then_get(fakekube: FakeKube) -> None:
    names = _apply_esenas(fakekube)
    table = fakekube.kubectl("get", "esj").stdout.splitlines()
    header = table[0].split()
    assert header[0] == "NAME" and "PHASE" in header and "AGE" in header
    assert sorted(line.split()[0] for line in table[1:]) == sorted(names)

    listed = json.loads(fakekube.kubectl("get", "esenasjobs", "-o", "json").stdout)
    assert listed["kind"] == "List" and len(listed["items"]) == len(names)
    for obj in listed["items"]:
        assert obj["metadata"]["generation"] == 1
        assert "status" not in obj, "status subresource: the main endpoint drops .status"
        assert obj["spec"]["workers"]["replicas"] >= 1

    # Re-applying unchanged files changes nothing: no write, same resourceVersion.
    rv_before = fakekube.client.stats()["resourceVersion"]
    out = fakekube.kubectl("apply", *[a for p in EXAMPLES for a in ("-f", str(p))]).stdout
    assert out.count("unchanged") == len(names), out
    assert fakekube.client.stats()["resourceVersion"] == rv_before


def test_schema_defaults_and_rejections_through_kubectl(fakekube: FakeKube) -> None:
    fakekube.kubectl("apply", "-f", "-", input=dump(WIDGET_CRD))
    fakekube.kubectl("apply", "-f", "-", input=dump(widget("w", size=3)))
    obj = fakekube.client.get("/apis/fake.test/v1/namespaces/default/widgets/w")
    assert obj["spec"]["color"] == "red", "schema default applied"

    bad = fakekube.kubectl("apply", "-f", "-", input=dump(widget("bad", size=101, color="x")),
                           check=False)
    assert bad.returncode != 0
    assert "spec.size: Invalid value: 101" in bad.stderr
    assert 'spec.color: Unsupported value: "x"' in bad.stderr

    unknown = fakekube.kubectl("apply", "-f", "-", input=dump(widget("u", size=1, typo=1)),
                               check=False)
    assert unknown.returncode != 0 and 'unknown field "spec.typo"' in unknown.stderr
    pruned = fakekube.kubectl("apply", "--validate=warn", "-f", "-",
                              input=dump(widget("u", size=1, typo=1)))
    assert 'Warning: unknown field "spec.typo"' in pruned.stderr
    assert "typo" not in fakekube.client.get(
        "/apis/fake.test/v1/namespaces/default/widgets/u")["spec"]

    missing = fakekube.kubectl("create", "-f", "-", check=False, input=dump(
        {"apiVersion": "fake.test/v1", "kind": "Widget", "metadata": {"name": "m"},
         "spec": {}}))
    assert "spec.size: Required value" in missing.stderr
    # CEL rules: cross-field (numbers typed as doubles), transition rules, ratcheting.
    crossed = fakekube.kubectl("apply", "-f", "-", check=False,
                               input=dump(widget("c", size=1, min=5, max=2)))
    assert 'spec: Invalid value: "object": spec.min must be <= spec.max' in crossed.stderr
    fakekube.kubectl("apply", "-f", "-", input=dump(widget("c", size=1, min=1, max=2.5,
                                                             shape="round")))
    moved = fakekube.kubectl("patch", "widget", "c", "--type", "merge",
                             "-p", '{"spec":{"shape":"square"}}', check=False)
    assert "spec.shape is immutable" in moved.stderr
    fakekube.kubectl("patch", "widget", "c", "--type", "merge", "-p", '{"spec":{"size":2}}')

    explained = fakekube.kubectl("explain", "widgets.spec.size").stdout
    assert "How many parts." in explained


def test_esenas_crd_rules_stop_bad_specs(fakekube: FakeKube) -> None:
    _apply_esenas(fakekube)
    bad = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "bad"},
           "spec": {"environment": {"id": "InvertedPendulum-v5"},
                    "es": {"perturbations": 4, "topDirections": 8}}}
    out = fakekube.kubectl("apply", "-f", "-", input=dump(bad), check=False)
    assert out.returncode != 0 and 'ESENASJob "bad" is invalid' in out.stderr
    assert "spec.es" in out.stderr, out.stderr
    negative = json.loads(json.dumps(bad))
    negative["spec"]["es"] = {"perturbations": -4}
    out = fakekube.kubectl("apply", "-f", "-", input=dump(negative), check=False)
    assert out.returncode != 0 and "spec.es.perturbations: Invalid value: -4" in out.stderr


def test_scale_patch_and_generation(fakekube: FakeKube) -> None:
    _apply_esenas(fakekube)
    fakekube.kubectl("scale", "esj/inverted-pendulum", "--replicas=7")
    path = "/apis/esenas.dev/v1alpha1/namespaces/default/esenasjobs/inverted-pendulum"
    obj = fakekube.client.get(path)
    assert obj["spec"]["workers"]["replicas"] == 7
    assert obj["metadata"]["generation"] == 2
    scale = fakekube.client.get(path + "/scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 7

    fakekube.kubectl("patch", "esj", "inverted-pendulum", "--type", "merge",
                     "-p", '{"spec":{"suspend":true}}')
    fakekube.kubectl("patch", "esj", "inverted-pendulum", "--type", "json",
                     "-p", '[{"op":"replace","path":"/spec/stopping/maxIterations","value":5}]')
    obj = fakekube.client.get(path)
    assert obj["spec"]["suspend"] is True and obj["spec"]["stopping"]["maxIterations"] == 5
    assert obj["metadata"]["generation"] == 4
    failed = fakekube.kubectl("patch", "esj", "inverted-pendulum", "--type", "json", "-p",
                              '[{"op":"test","path":"/spec/stopping/maxIterations","value":6}]', check=False)
    assert failed.returncode != 0 and "testing value /spec/stopping/maxIterations failed" in failed.stderr
    immutable = fakekube.kubectl("patch", "esj", "inverted-pendulum", "--type", "json",
                                 "-p", '[{"op":"replace","path":"/spec/seed","value":5}]', check=False)
    assert immutable.returncode != 0 and "spec.seed is immutable" in immutable.stderr, immutable.stderr
    smp = fakekube.kubectl("patch", "esj", "inverted-pendulum", "--type", "strategic",
                           "-p", '{"spec":{"seed":1}}', check=False)
    assert smp.returncode != 0, "strategic merge patch is not supported for custom resources"

    # Built-in kinds: strategic merge merges containers and env by name; scale works too.
    fakekube.kubectl("apply", "-f", "-", input=dump(DEPLOYMENT))
    fakekube.kubectl("patch", "deployment", "web", "--type", "strategic", "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [
            {"name": "main", "env": [{"name": "B", "value": "2"}]}]}}}}))
    deploy = fakekube.client.get("/apis/apps/v1/namespaces/default/deployments/web")
    containers = deploy["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["main", "side"]
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert containers[0]["image"] == "busybox"
    fakekube.kubectl("scale", "deployment/web", "--replicas=0")
    assert fakekube.client.get(
        "/apis/apps/v1/namespaces/default/deployments/web")["spec"]["replicas"] == 0

    # Client-side apply of a changed Deployment goes through a strategic merge patch.
    changed = json.loads(json.dumps(DEPLOYMENT))
    changed["spec"]["template"]["spec"]["containers"].pop()
    out = fakekube.kubectl("apply", "-f", "-", input=dump(changed)).stdout
    assert "configured" in out
    deploy = fakekube.client.get("/apis/apps/v1/namespaces/default/deployments/web")
    assert [c["name"] for c in deploy["spec"]["template"]["spec"]["containers"]] == ["main"]


def test_get_watch_streams_changes(fakekube: FakeKube) -> None:
    fakekube.kubectl("apply", "-f", "-", input=dump(WIDGET_CRD))
    fakekube.kubectl("apply", "-f", "-", input=dump(widget("w", size=1)))
    cmd = [kubectl_binary(), "--cache-dir", str(fakekube.cache_dir), "get", "widgets", "-w",
           "--request-timeout=3s", "-o", "custom-columns=NAME:.metadata.name,SIZE:.spec.size"]
    watcher = subprocess.Popen(cmd, env=fakekube.env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert watcher.stdout is not None
    seen = [watcher.stdout.readline(), watcher.stdout.readline()]  # header, then the list
    fakekube.kubectl("patch", "widget", "w", "--type", "merge", "-p", '{"spec":{"size":9}}')
    fakekube.kubectl("apply", "-f", "-", input=dump(widget("w2", size=4)))
    out, err = watcher.communicate(timeout=20)
    rows = [line.split() for line in ("".join(seen) + out).splitlines()[1:]]
    assert rows == [["w", "1"], ["w", "9"], ["w2", "4"]], (seen, out, err)

    table_watch = subprocess.run(
        [kubectl_binary(), "--cache-dir", str(fakekube.cache_dir), "get", "widgets", "-w",
         "--request-timeout=2s"], env=fakekube.env(), capture_output=True, text=True,
        timeout=20, check=False)
    lines = table_watch.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "PHASE", "AGE"], table_watch
    assert [line.split()[:2] for line in lines[1:]] == [["w", "9"], ["w2", "4"]]


def test_delete_with_finalizer_and_cascade(fakekube: FakeKube) -> None:
    fakekube.kubectl("apply", "-f", "-", input=dump(WIDGET_CRD))
    owner = widget("owner", size=1)
    owner["metadata"]["finalizers"] = ["fake.test/hold"]
    fakekube.kubectl("apply", "-f", "-", input=dump(owner))
    uid = fakekube.client.get("/apis/fake.test/v1/namespaces/default/widgets/owner")[
        "metadata"]["uid"]
    ref = {"apiVersion": "fake.test/v1", "kind": "Widget", "name": "owner", "uid": uid,
           "controller": True, "blockOwnerDeletion": True}
    for name in ("child-a", "child-b"):
        fakekube.kubectl("apply", "-f", "-", input=dump({
            "apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"},
            "metadata": {"name": name, "ownerReferences": [ref]}}))

    fakekube.kubectl("delete", "widget", "owner", "--wait=false")
    held = fakekube.client.get("/apis/fake.test/v1/namespaces/default/widgets/owner")
    assert held["metadata"]["deletionTimestamp"], "a finalizer holds the object"
    names = [c["metadata"]["name"] for c in fakekube.client.list(
        "/api/v1/namespaces/default/configmaps")]
    assert {"child-a", "child-b"} <= set(names), "dependents stay while the owner exists"
    fakekube.kubectl("patch", "widget", "owner", "--type", "json",
                     "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    assert fakekube.kubectl("get", "widget", "owner", check=False).returncode != 0
    names = [c["metadata"]["name"] for c in fakekube.client.list(
        "/api/v1/namespaces/default/configmaps")]
    assert "child-a" not in names and "child-b" not in names, "dependents are collected"


def test_protobuf_bodies_are_refused_by_name(fakekube: FakeKube) -> None:
    """kubectl create <built-in> sends protobuf, which the fake does not decode: it must say so
    (415 naming the media type), not fail to parse the bytes as JSON."""
    proc = subprocess.run([kubectl_binary(), "--kubeconfig", str(fakekube.kubeconfig), "create", "namespace", "ml"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert 'UnsupportedMediaType' in proc.stderr and "application/vnd.kubernetes.protobuf" in proc.stderr, proc.stderr
