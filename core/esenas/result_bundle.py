"""A run's result documents, cut into ConfigMap-sized chunks, with a manifest that catches a partial set.

The operator writes it (operator/esenas_operator/results.py); ``esenas fetch`` reads it. It is
the contract between the two, so it lives here, in plain stdlib code (docs/results.md):

- the payload is ``gzip(json({file name: text}))``, deterministic (gzip mtime 0, sorted keys);
- it is cut into chunks of at most :data:`CHUNK_BYTES` (a ConfigMap holds at most 1 MiB, and
  base64 in ``binaryData`` adds a third: 640 KiB become 854 KiB);
- the manifest names the chunks and holds the payload's size and SHA-256, and each file's.
  Every chunk carries the payload's SHA-256 too, so a chunk left from another write, a missing
  chunk or a changed byte is an error, never a silently wrong policy.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

FORMAT: Final = "esenas.dev/result/v1"
MANIFEST_KEY: Final = "manifest.json"
#: The manifest ConfigMap also holds the summary in plain text, for ``kubectl get cm``.
SUMMARY_KEY: Final = "summary.json"
#: A chunk ConfigMap: the bytes in binaryData[CHUNK_KEY]; the payload's SHA-256 and "i/n" in data
#: (data, not annotations, so that a rewrite of the ConfigMap always rewrites them too).
CHUNK_KEY: Final = "chunk"
DIGEST_KEY: Final = "sha256"
INDEX_KEY: Final = "index"
CHUNK_BYTES: Final = 640 * 1024
#: 40 MiB of compressed result; a dense [256, 256] policy with a long history is under 2 MiB.
MAX_CHUNKS: Final = 64


class ResultError(ValueError):
    """The stored result cannot be read back whole; the message says which part and why."""


@dataclass(frozen=True)
class Packed:
    manifest: dict[str, Any]
    chunks: list[bytes]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_name(base: str, index: int) -> str:
    """The ConfigMap of chunk ``index`` of the result whose manifest ConfigMap is ``base``."""
    return f"{base}-{index}"


def pack(files: Mapping[str, str], base: str, **extra: Any) -> Packed:
    """Cut ``files`` (name -> text) into chunks; ``extra`` goes into the manifest as it is."""
    payload = gzip.compress(json.dumps(dict(files), sort_keys=True, separators=(",", ":")).encode(), mtime=0)
    n = max(1, -(-len(payload) // CHUNK_BYTES))
    if n > MAX_CHUNKS:
        raise ResultError(f"the result is {len(payload):,} bytes compressed, over the {MAX_CHUNKS} chunks "
                          f"of {CHUNK_BYTES:,} bytes a job may store")
    chunks = [payload[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES] for i in range(n)]
    manifest = {
        "format": FORMAT,
        "encoding": "gzip+json",
        "bytes": len(payload),
        "sha256": sha256(payload),
        "chunks": n,
        "configMaps": [chunk_name(base, i) for i in range(n)],
        "files": {name: {"bytes": len(text.encode()), "sha256": sha256(text.encode())} for name, text in sorted(files.items())},
        **extra,
    }
    return Packed(manifest, chunks)


def unpack(manifest: Mapping[str, Any], chunks: Sequence[tuple[bytes, str] | None]) -> dict[str, str]:
    """The files back from the manifest and each chunk's (bytes, SHA-256 it carries); None: not found.

    Raises :class:`ResultError` for an unknown format, a missing or foreign chunk, or a digest mismatch.
    """
    if manifest.get("format") != FORMAT:
        raise ResultError(f"unknown result format {manifest.get('format')!r} (this esenas reads {FORMAT}); "
                          "upgrade esenas to the operator's version")
    names = list(manifest.get("configMaps") or [])
    want = int(manifest.get("chunks") or 0)
    if want < 1 or len(names) != want or len(chunks) != want:
        raise ResultError(f"the manifest lists {len(names)} ConfigMaps for {want} chunks; {len(chunks)} were read")
    digest = str(manifest.get("sha256") or "")
    missing = [names[i] for i, c in enumerate(chunks) if c is None]
    if missing:
        raise ResultError(f"incomplete result: {len(missing)} of {want} chunks missing ({', '.join(missing)})")
    present = [c for c in chunks if c is not None]
    foreign = [names[i] for i, (_, d) in enumerate(present) if d != digest]
    if foreign:
        raise ResultError(f"incomplete result: {', '.join(foreign)} belong(s) to another write of the result "
                          f"(the sha256 they carry is not the manifest's {digest[:12]}...)")
    payload = b"".join(data for data, _ in present)
    if len(payload) != manifest.get("bytes") or sha256(payload) != digest:
        raise ResultError(f"digest mismatch: the chunks hold {len(payload):,} bytes with sha256 "
                          f"{sha256(payload)[:12]}..., the manifest says {manifest.get('bytes')} bytes, {digest[:12]}...")
    try:
        files = json.loads(gzip.decompress(payload))
    except (OSError, ValueError) as exc:  # the digest matched, so the writer wrote garbage
        raise ResultError(f"the result's payload does not decode: {exc}") from None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise ResultError("the result's payload is not a map of file names to texts")
    for name, meta in (manifest.get("files") or {}).items():
        if name not in files or sha256(files[name].encode()) != meta.get("sha256"):
            raise ResultError(f"digest mismatch: {name} is missing or differs from the manifest")
    return dict(files)
