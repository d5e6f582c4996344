"""The operator's copy of a finished job's result: chunked ConfigMaps that fit the API server's
1 MiB, owned by the job, written chunks first, and read back whole by esenas.result_bundle."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import kubernetes_validate
import pytest
from esenas import result_bundle
from esenas.result_bundle import CHUNK_KEY, DIGEST_KEY, MANIFEST_KEY, unpack
from esenas_operator import names, results

CONFIGMAP_LIMIT = 1024 * 1024
URL = "http://big-aggregator.rl.svc:9090"
SUMMARY = {"job": "big", "task": "Humanoid-v5", "iterations": 40, "bestReward": 5000.0}


def body(name: str = "big") -> dict[str, Any]:
    return {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob",
            "metadata": {"name": name, "namespace": "rl", "uid": "0b7c-uid", "generation": 1}, "spec": {}}


def dense_policy() -> dict[str, Any]:
    """A dense [256, 256] MLP on Humanoid's 348-d observation: ~160k numbers, ~3.5 MB of JSON."""
    rng = random.Random(0)
    n = 348 * 256 + 256 * 256 + 256 * 17 + 256 + 256 + 17
    return {"format": "esenas-policy/v1", "params": [rng.gauss(0, 1) for _ in range(n)]}


class FakeAggregator:
    def __init__(self, docs: dict[str, Any]) -> None:
        self.docs = docs
        self.urls: list[str] = []

    def __call__(self, url: str) -> Any:
        self.urls.append(url)
        path = url.removeprefix(URL)
        if path not in self.docs:
            return None  # fetch_json's 404
        doc = self.docs[path]
        if isinstance(doc, Exception):
            raise doc
        return doc


class Writer:
    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []

    def write(self, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any] | None:
        assert not dry_run
        self.written.append(obj)
        return obj


def aggregator(policy: Any) -> FakeAggregator:
    return FakeAggregator({"/summary": SUMMARY, "/result": policy, "/history": {"history": [{"iteration": 0}]}})


def read_back(objs: list[dict[str, Any]]) -> dict[str, str]:
    by_name = {o["metadata"]["name"]: o for o in objs}
    manifest = json.loads(by_name[names.result_configmap("big")]["data"][MANIFEST_KEY])
    chunks = [(base64.b64decode(by_name[n]["binaryData"][CHUNK_KEY]), by_name[n]["data"][DIGEST_KEY])
              for n in manifest["configMaps"]]
    return unpack(manifest, chunks)


def test_a_dense_256_256_result_is_stored_in_chunks_each_under_one_mib() -> None:
    policy = dense_policy()
    assert len(json.dumps(policy)) > 3 * CONFIGMAP_LIMIT
    kube = Writer()
    status = results.store(kube, body(), URL, fetch=aggregator(policy))
    assert status is not None
    objs = kube.written
    written = [o["metadata"]["name"] for o in objs]
    assert written == [*(f"big-result-{i}" for i in range(status["chunks"])), "big-result"]  # manifest last
    assert status["chunks"] >= 2
    assert status == {"configMap": "big-result", "chunks": status["chunks"], "bytes": status["bytes"],
                      "policyBytes": len(json.dumps(policy, separators=(",", ":"))), "sha256": status["sha256"],
                      "complete": True, "iteration": 40}
    for obj in objs:
        assert len(json.dumps(obj)) < 900 * 1024 + 4096 < CONFIGMAP_LIMIT
        meta = obj["metadata"]
        assert meta["namespace"] == "rl" and meta["ownerReferences"] == [names.owner_reference(body())]
        assert meta["labels"] == names.labels("big", "result")
        kubernetes_validate.validate(obj, "1.33", strict=True)
    files = read_back(objs)
    assert sorted(files) == ["history.json", "policy.json", "summary.json"]
    assert json.loads(files["policy.json"]) == policy
    assert json.loads(files["summary.json"]) == SUMMARY
    assert json.loads(files["history.json"]) == [{"iteration": 0}]
    assert json.loads(objs[-1]["data"]["summary.json"]) == SUMMARY  # readable with kubectl


def test_the_aggregators_three_documents_are_fetched() -> None:
    fetch = aggregator({"params": [1.0]})
    assert results.collect(URL, fetch) is not None
    assert fetch.urls == [URL + "/summary", URL + "/result", URL + "/history"]


def test_no_result_yet_stores_nothing() -> None:
    kube = Writer()
    assert results.store(kube, body(), URL, fetch=FakeAggregator({"/summary": SUMMARY, "/history": {"history": []}})) is None
    assert kube.written == []


def test_an_unreachable_aggregator_raises_for_a_retry_but_not_for_a_partial_result() -> None:
    fetch = FakeAggregator({"/summary": OSError("connection refused")})
    with pytest.raises(OSError):
        results.store(Writer(), body(), URL, fetch=fetch)
    assert results.store_partial(Writer(), body(), URL, fetch=fetch) is None


def test_a_partial_result_says_so() -> None:
    kube = Writer()
    status = results.store_partial(kube, body(), URL, fetch=aggregator({"params": [1.0]}))
    assert status is not None and status["complete"] is False and status["chunks"] == 1
    manifest = json.loads(kube.written[-1]["data"][MANIFEST_KEY])
    assert manifest["complete"] is False and manifest["iteration"] == 40


def test_a_result_over_the_budget_finishes_the_job_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(result_bundle, "MAX_CHUNKS", 1)
    monkeypatch.setattr(result_bundle, "CHUNK_BYTES", 100)
    kube = Writer()
    status = results.store(kube, body(), URL, fetch=aggregator(dense_policy()))
    assert kube.written == []
    assert status is not None and status["configMap"] == "" and status["message"].startswith("not stored: the result is")


def test_a_history_that_is_not_a_list_is_an_error() -> None:
    with pytest.raises(ValueError, match="no history list"):
        results.collect(URL, FakeAggregator({"/summary": SUMMARY, "/result": {}, "/history": {"oops": 1}}))
