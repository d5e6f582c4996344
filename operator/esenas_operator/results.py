"""A finished job's result, copied out of the aggregator into chunked ConfigMaps before the fleet stops.

Why ConfigMaps written by the operator (docs/results.md): they outlive the scale-down (the
aggregator's emptyDir does not, and a PVC needs a pod to be read), they are read with the user's
own kubeconfig and RBAC (``esenas fetch``), they go with the job by owner reference, and the
operator already creates ConfigMaps, so neither it nor the aggregator gains a permission.
The aggregator, which runs the user's environment code, gets no API access at all.

Pure builders plus one :func:`store` that fetches and writes; the handlers only call it.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from esenas.result_bundle import (
    CHUNK_KEY,
    DIGEST_KEY,
    INDEX_KEY,
    MANIFEST_KEY,
    SUMMARY_KEY,
    ResultError,
    pack,
)
from esenas.run_summary import HISTORY_FILE, POLICY_FILE, SUMMARY_FILE

from esenas_operator import names
from esenas_operator.aggregator_http import fetch_json

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Fetch = Callable[[str], Any]

#: The aggregator's HTTP documents (docs/contracts.md), by their file name in a run folder.
SOURCES: Final = {SUMMARY_FILE: "/summary", POLICY_FILE: "/result", HISTORY_FILE: "/history"}
#: A dense policy is megabytes of JSON; /status's 3 s would cut it off on a busy node.
FETCH_TIMEOUT: Final = 30.0
#: The summary is also kept readable in the manifest ConfigMap when it is this small.
PLAIN_SUMMARY_MAX: Final = 64 * 1024


def _fetch(url: str) -> Any:
    return fetch_json(url, timeout=FETCH_TIMEOUT)


def collect(base_url: str, fetch: Fetch = _fetch) -> dict[str, str] | None:
    """The result's files (name -> JSON text) from the aggregator at ``base_url``; None while it has none (404).

    Raises OSError when the aggregator cannot be reached, ValueError for a document that is not JSON.
    """
    files: dict[str, str] = {}
    for name, path in SOURCES.items():
        doc = fetch(base_url + path)
        if doc is None:
            return None
        if name == HISTORY_FILE:
            doc = doc.get("history") if isinstance(doc, Mapping) else None
            if not isinstance(doc, list):
                raise ValueError(f"{base_url}{path}: no history list")
        files[name] = json.dumps(doc, separators=(",", ":"))
    return files


def _meta(body: Mapping[str, Any], name: str) -> Obj:
    return {
        "name": name,
        "namespace": body["metadata"]["namespace"],
        "labels": names.labels(body["metadata"]["name"], "result"),
        "ownerReferences": [names.owner_reference(body)],
    }


def build_result(body: Mapping[str, Any], files: Mapping[str, str], *, complete: bool) -> tuple[list[Obj], Obj]:
    """(ConfigMaps in write order: chunks first, the manifest last; the status.result document).

    A reader that finds the manifest knows every chunk was written before it. Raises ResultError
    when the result is over the chunk budget.
    """
    base = names.result_configmap(body["metadata"]["name"])
    summary = json.loads(files[SUMMARY_FILE])
    iteration = int(summary.get("iterations") or 0)
    packed = pack(files, base, complete=complete, iteration=iteration)
    m = packed.manifest
    digest, n = str(m["sha256"]), int(m["chunks"])
    objs: list[Obj] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(body, name),
            "data": {DIGEST_KEY: digest, INDEX_KEY: f"{i}/{n}"},
            "binaryData": {CHUNK_KEY: base64.b64encode(chunk).decode()},
        }
        for i, (name, chunk) in enumerate(zip(m["configMaps"], packed.chunks, strict=True))
    ]
    data = {MANIFEST_KEY: json.dumps(m, indent=1)}
    if len(files[SUMMARY_FILE]) <= PLAIN_SUMMARY_MAX:
        data[SUMMARY_KEY] = json.dumps(summary, indent=2)
    objs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(body, base), "data": data})
    status = {
        "configMap": base,
        "chunks": n,
        "bytes": int(m["bytes"]),
        "policyBytes": len(files[POLICY_FILE].encode()),
        "sha256": digest,
        "complete": complete,
        "iteration": iteration,
    }
    return objs, status


class Writer(Protocol):
    """What :func:`store` needs of :class:`esenas_operator.kube.Kube`: a server-side apply."""

    def write(self, obj: Obj, dry_run: bool = False) -> Obj | None: ...


def store(kube: Writer, body: Mapping[str, Any], base_url: str, *, complete: bool = True, fetch: Fetch = _fetch) -> Obj | None:
    """Copy the aggregator's result into the job's result ConfigMaps; the status.result document.

    None while the aggregator has no result. A result over the chunk budget is not stored; the
    document then says why (``message``), so the job still finishes. Unreachable aggregator or
    API errors raise, so the caller's next tick tries again while the aggregator is still up.
    """
    files = collect(base_url, fetch)
    if files is None:
        return None
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    try:
        objs, status = build_result(body, files, complete=complete)
    except ResultError as exc:
        log.warning("result of %s/%s not stored: %s", ns, name, exc)
        return {"configMap": "", "complete": complete, "message": f"not stored: {exc}"}
    for obj in objs:
        kube.write(obj)  # applied: creates or rewrites without reading it first
    log.info("stored the result of %s/%s: %d chunk(s), %d bytes, sha256 %s", ns, name, status["chunks"], status["bytes"], status["sha256"][:12])
    return status


def store_partial(kube: Writer, body: Mapping[str, Any], base_url: str, fetch: Fetch = _fetch) -> Obj | None:
    """A failing job's best-so-far (``complete: false``), if the aggregator still serves one; never raises,
    so that a failure is recorded even when its result cannot be."""
    try:
        return store(kube, body, base_url, complete=False, fetch=fetch)
    # Any error here must not keep the job from being marked Failed: log it and go on.
    except Exception as exc:
        log.warning("partial result of %s/%s not stored: %s", body["metadata"]["namespace"], body["metadata"]["name"], exc)
        return None
