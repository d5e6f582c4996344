"""The chunked result format (esenas.result_bundle): a result over 1 MiB round-trips through
ConfigMap-sized chunks, and a missing, foreign or changed chunk is an error, never a wrong policy."""

from __future__ import annotations

import base64
import functools
import json
import random

import pytest
from esenas import result_bundle
from esenas.result_bundle import (
    CHUNK_BYTES,
    FORMAT,
    MAX_CHUNKS,
    ResultError,
    chunk_name,
    pack,
    unpack,
)

#: The API server refuses a ConfigMap whose data is over 1 MiB; keep a margin for metadata.
CONFIGMAP_LIMIT = 1024 * 1024
BASE = "big-result"


@functools.cache
def _dense_256_256_policy() -> str:
    """A dense [256, 256] MLP's policy.json for a 376-d observation (Humanoid): ~167k numbers."""
    rng = random.Random(0)
    n = 376 * 256 + 256 * 256 + 256 * 17 + 256 + 256 + 17
    return json.dumps({"format": "esenas-policy/v1", "params": [rng.gauss(0, 1) for _ in range(n)]}, indent=1)


def _chunks(files: dict[str, str]) -> tuple[dict[str, object], list[tuple[bytes, str] | None]]:
    packed = pack(files, BASE, iteration=7)
    return packed.manifest, [(c, str(packed.manifest["sha256"])) for c in packed.chunks]


def test_a_policy_over_one_mib_round_trips_in_chunks_that_each_fit_a_configmap() -> None:
    files = {"policy.json": _dense_256_256_policy(), "summary.json": '{"job": "big"}', "history.json": "[]"}
    assert len(files["policy.json"]) > 2 * CONFIGMAP_LIMIT
    packed = pack(files, BASE, iteration=7)
    m = packed.manifest
    assert m["format"] == FORMAT and m["iteration"] == 7
    assert m["chunks"] == len(packed.chunks) >= 2
    assert m["configMaps"] == [chunk_name(BASE, i) for i in range(m["chunks"])] == [f"{BASE}-{i}" for i in range(m["chunks"])]
    for chunk in packed.chunks:
        assert 0 < len(chunk) <= CHUNK_BYTES
        assert len(base64.b64encode(chunk)) <= 900 * 1024 < CONFIGMAP_LIMIT
    assert sum(map(len, packed.chunks)) == m["bytes"]
    assert m["files"]["policy.json"]["bytes"] == len(files["policy.json"].encode())
    assert unpack(m, [(c, m["sha256"]) for c in packed.chunks]) == files


def test_packing_is_deterministic() -> None:
    files = {"summary.json": "{}", "policy.json": "{}", "history.json": "[]"}
    assert pack(files, BASE) == pack(dict(reversed(files.items())), BASE)


def test_a_missing_chunk_is_named() -> None:
    manifest, chunks = _chunks({"policy.json": _dense_256_256_policy()})
    chunks[1] = None
    with pytest.raises(ResultError, match=rf"incomplete result: 1 of {len(chunks)} chunks missing \({BASE}-1\)"):
        unpack(manifest, chunks)


def test_a_chunk_of_another_write_is_refused() -> None:
    manifest, chunks = _chunks({"policy.json": _dense_256_256_policy()})
    data, _ = chunks[0] or (b"", "")
    chunks[0] = (data, "0" * 64)
    with pytest.raises(ResultError, match=rf"{BASE}-0 belong\(s\) to another write"):
        unpack(manifest, chunks)


def test_a_changed_byte_is_a_digest_mismatch() -> None:
    manifest, chunks = _chunks({"policy.json": _dense_256_256_policy()})
    data, digest = chunks[-1] or (b"", "")
    chunks[-1] = (data[:-1] + bytes([data[-1] ^ 1]), digest)
    with pytest.raises(ResultError, match="digest mismatch: the chunks hold"):
        unpack(manifest, chunks)
    chunks[-1] = (data[:-1], digest)  # truncated
    with pytest.raises(ResultError, match="digest mismatch"):
        unpack(manifest, chunks)


def test_a_manifest_that_disagrees_with_the_chunks_read_is_refused() -> None:
    manifest, chunks = _chunks({"summary.json": "{}"})
    with pytest.raises(ResultError, match="lists 1 ConfigMaps for 1 chunks; 2 were read"):
        unpack(manifest, [*chunks, None])
    with pytest.raises(ResultError, match=r"unknown result format 'esenas\.dev/result/v9'"):
        unpack({**manifest, "format": "esenas.dev/result/v9"}, chunks)
    files = dict(manifest["files"])  # type: ignore[call-overload]
    files["summary.json"] = {"bytes": 2, "sha256": "f" * 64}
    with pytest.raises(ResultError, match=r"summary\.json is missing or differs"):
        unpack({**manifest, "files": files}, chunks)


def test_a_result_beyond_the_chunk_budget_is_refused_when_written(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_CHUNKS * CHUNK_BYTES >= 40 * 1024 * 1024
    monkeypatch.setattr(result_bundle, "CHUNK_BYTES", 1000)  # the same rule at a size that is quick to build
    monkeypatch.setattr(result_bundle, "MAX_CHUNKS", 3)
    rng = random.Random(1)
    incompressible = "".join(rng.choice("0123456789abcdef") for _ in range(8000))
    with pytest.raises(ResultError, match="over the 3 chunks of 1,000 bytes"):
        pack({"policy.json": incompressible}, BASE)
    assert pack({"policy.json": incompressible[:3000]}, BASE).manifest["chunks"] == 2
