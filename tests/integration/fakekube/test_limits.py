"""The size limits and format checks a real API server enforces, through the real kubectl: the
256 KiB of annotations, a ConfigMap's or Secret's 1 MiB of data, etcd's 1.5 MiB per object, and
the pattern of an int-or-string value (a resource.Quantity) in a CRD's schema."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from tests.fakekube.harness import ApiStatusError, FakeKube
from tests.integration.fakekube.crds import WIDGET_CRD, dump, widget

WIDGETS = "/apis/fake.test/v1/namespaces/default/widgets"
MIB = 1024 * 1024


def _cm(name: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **fields}


def test_annotations_over_256_kib_are_refused(fakekube: FakeKube) -> None:
    fakekube.kubectl("apply", "-f", "-", input=dump(WIDGET_CRD))
    near = widget("near")
    near["metadata"]["annotations"] = {"note": "x" * (256 * 1024 - 100)}
    fakekube.kubectl("create", "-f", "-", input=dump(near))  # keys and values: 262,048 bytes
    over = widget("over")
    over["metadata"]["annotations"] = {"note": "x" * (256 * 1024 - 100), "more": "y" * 200}
    out = fakekube.kubectl("create", "-f", "-", input=dump(over), check=False)
    assert out.returncode != 0
    assert 'The Widget "over" is invalid: metadata.annotations: Too long: must have at most 262144 bytes' in out.stderr
    # Bytes, not characters: 100,000 three-byte characters are 300,000 bytes.
    wide = _cm("wide")
    wide["metadata"]["annotations"] = {"note": "€" * 100_000}
    out = fakekube.kubectl("apply", "--server-side", "-f", "-", input=dump(wide), check=False)
    assert "metadata.annotations: Too long: must have at most 262144 bytes" in out.stderr
    # Client-side apply copies the whole object into an annotation: a large spec alone passes
    # the limit there, though the object itself is far from any other bound.
    big = widget("big", extra={"blob": "z" * (256 * 1024)})
    out = fakekube.kubectl("apply", "-f", "-", input=dump(big), check=False)
    assert out.returncode != 0 and "metadata.annotations: Too long: must have at most 262144 bytes" in out.stderr
    fakekube.kubectl("apply", "--server-side", "-f", "-", input=dump(big))
    assert len(fakekube.client.get(f"{WIDGETS}/big")["spec"]["extra"]["blob"]) == 256 * 1024


def test_configmap_and_secret_data_over_1_mib_are_refused(fakekube: FakeKube) -> None:
    fits = _cm("fits", data={"a": "x" * (MIB // 2)}, binaryData={"b": base64.b64encode(b"\0" * (MIB // 2)).decode()})
    fakekube.kubectl("apply", "--server-side", "-f", "-", input=dump(fits))  # exactly 1 MiB of values
    big = _cm("big", data={"a": "x" * (MIB // 2), "c": "q"}, binaryData={"b": base64.b64encode(b"\0" * (MIB // 2)).decode()})
    out = fakekube.kubectl("apply", "--server-side", "-f", "-", input=dump(big), check=False)
    assert out.returncode != 0
    assert 'The ConfigMap "big" is invalid: []: Too long: must have at most 1048576 bytes' in out.stderr
    # A patch that grows a ConfigMap past the limit is refused the same way, and changes nothing.
    with pytest.raises(ApiStatusError) as info:
        fakekube.client.patch("/api/v1/namespaces/default/configmaps/fits", {"data": {"c": "q"}})
    assert info.value.code == 422 and "[]: Too long: must have at most 1048576 bytes" in info.value.status["message"]
    assert "c" not in fakekube.client.get("/api/v1/namespaces/default/configmaps/fits")["data"]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"k": base64.b64encode(b"\1" * (MIB + 1)).decode()}}
    out = fakekube.kubectl("apply", "--server-side", "-f", "-", input=dump(secret), check=False)
    assert 'The Secret "s" is invalid: data: Too long: must have at most 1048576 bytes' in out.stderr


def test_an_object_over_etcds_request_limit_is_refused_with_413(fakekube: FakeKube) -> None:
    fakekube.kubectl("apply", "-f", "-", input=dump(WIDGET_CRD))
    huge = widget("huge", extra={"blob": "z" * (1600 * 1024)})
    out = fakekube.kubectl("create", "-f", "-", input=dump(huge), check=False)
    assert out.returncode != 0
    assert "Error from server (RequestEntityTooLarge)" in out.stderr and "etcdserver: request is too large" in out.stderr
    # A dry run never reaches etcd: it is admitted.
    fakekube.client.create(WIDGETS, huge, dryRun="All")
    # A status write that would grow a stored object past the limit fails, and the object stays.
    fakekube.client.create(WIDGETS, widget("grows", extra={"blob": "z" * (1000 * 1024)}))
    with pytest.raises(ApiStatusError) as info:
        fakekube.client.patch(f"{WIDGETS}/grows/status", {"status": {"copy": "z" * (1000 * 1024)}})
    assert info.value.code == 413 and info.value.status["reason"] == "RequestEntityTooLarge"
    assert "copy" not in (fakekube.client.get(f"{WIDGETS}/grows").get("status") or {})


QUANTITY_CRD: dict[str, Any] = copy.deepcopy(WIDGET_CRD)
QUANTITY_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["cpu"] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
    "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
}


def test_an_int_or_string_value_is_checked_against_its_pattern(fakekube: FakeKube) -> None:
    fakekube.kubectl("apply", "-f", "-", input=dump(QUANTITY_CRD))
    fakekube.wait_for(lambda: "widgets" in fakekube.kubectl("api-resources", "--api-group=fake.test").stdout)
    fakekube.kubectl("apply", "-f", "-", input=dump(widget("ok", cpu="500m")))
    fakekube.kubectl("apply", "-f", "-", input=dump(widget("int", cpu=2)))  # an integer has no pattern to match
    out = fakekube.kubectl("apply", "-f", "-", input=dump(widget("lots", cpu="lots")), check=False)
    assert out.returncode != 0
    assert 'spec.cpu: Invalid value: "lots": spec.cpu in body should match' in out.stderr
