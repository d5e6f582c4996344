"""kopf's state storages: status.kopf for new writes, the annotations of older operators read
once and removed by the next write (so an upgrade neither re-runs handlers nor keeps the copies)."""

from __future__ import annotations

import json
from typing import Any

import kopf
from esenas_operator.persistence import DiffBaseStorage, ProgressStorage

SPEC = {"environment": {"id": "InvertedPendulum-v5"}, "workers": {"replicas": 2}}
OLD_BASE = {"spec": SPEC}
RECORD = {"started": "2024-01-01T00:00:00.000000+00:00", "retries": 1}


def _body(annotations: dict[str, str] | None = None, status: dict[str, Any] | None = None) -> kopf.Body:
    raw: dict[str, Any] = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "spec": SPEC,
                           "metadata": {"name": "j", "namespace": "default", "annotations": annotations or {}}}
    if status is not None:
        raw["status"] = status
    return kopf.Body(raw)  # type: ignore[arg-type]


LEGACY = {
    "esenas.dev/last-handled-configuration": json.dumps(OLD_BASE) + "\n",
    "esenas.dev/kopf-managed": "yes",
    "esenas.dev/reconcile": json.dumps(RECORD),
    "esenas.dev/touch-dummy": "x",
    "team": "rl",
}


def test_diff_base_is_read_from_legacy_annotations_and_moved_to_status() -> None:
    storage = DiffBaseStorage()
    body = _body(LEGACY)
    assert storage.fetch(body=body) == OLD_BASE
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))  # type: ignore[arg-type]
    stored = json.loads(patch["status"]["kopf"]["last-handled-configuration"])
    assert stored == {"spec": SPEC, "metadata": {"annotations": {"team": "rl"}}}, stored
    dropped = {k for k, v in patch["metadata"]["annotations"].items() if v is None}
    assert dropped == {"esenas.dev/last-handled-configuration", "esenas.dev/kopf-managed"}
    # Once in the status, the status copy is the one read.
    moved = _body({"team": "rl"}, {"kopf": {"last-handled-configuration": json.dumps({"spec": {"new": 1}})}})
    assert storage.fetch(body=moved) == {"spec": {"new": 1}}
    again = kopf.Patch()
    storage.store(body=moved, patch=again, essence=storage.build(body=moved))  # type: ignore[arg-type]
    assert "annotations" not in again.get("metadata", {}), again  # nothing legacy left to drop


def test_essence_ignores_the_operators_annotations_and_status() -> None:
    diffbase, progress = DiffBaseStorage(), ProgressStorage()
    essence = progress.clear(essence=diffbase.build(body=_body(LEGACY, {"phase": "Running", "kopf": {"x": 1}})))
    assert essence == {"spec": SPEC, "metadata": {"annotations": {"team": "rl"}}}


MOVED = {"esenas.dev/last-handled-configuration": None, "esenas.dev/kopf-managed": None}


def test_progress_is_read_from_legacy_annotations_and_moved_to_status() -> None:
    storage = ProgressStorage()
    body = _body(LEGACY)
    assert storage.fetch(key=kopf.HandlerId("reconcile"), body=body) == RECORD
    patch = kopf.Patch()
    storage.store(key=kopf.HandlerId("reconcile"), record={**RECORD, "retries": 2}, body=body, patch=patch)  # type: ignore[typeddict-item]
    assert patch["status"]["kopf"]["progress"]["reconcile"]["retries"] == 2
    # The first write of a cycle also moves the legacy diff base, unchanged, into the status.
    assert patch["metadata"]["annotations"] == {"esenas.dev/reconcile": None, **MOVED}
    assert json.loads(patch["status"]["kopf"]["last-handled-configuration"]) == OLD_BASE
    touched = kopf.Patch()
    storage.touch(body=body, patch=touched, value="y")
    assert touched["status"]["kopf"]["dummy"] == "y" and touched["metadata"]["annotations"] == {"esenas.dev/touch-dummy": None}
    purged = kopf.Patch()
    storage.purge(key=kopf.HandlerId("reconcile"), body=_body(LEGACY, {"kopf": {"progress": {"reconcile": RECORD}}}), patch=purged)
    assert purged["status"]["kopf"]["progress"]["reconcile"] is None
    assert purged["metadata"]["annotations"] == {"esenas.dev/reconcile": None, **MOVED}
    fresh = _body({}, {"kopf": {"progress": {"reconcile": {"retries": 5}}}})
    assert storage.fetch(key=kopf.HandlerId("reconcile"), body=fresh) == {"retries": 5}


def test_a_status_diff_base_is_never_overwritten_by_the_legacy_one() -> None:
    newer = json.dumps({"spec": {"new": 1}})
    body = _body(LEGACY, {"kopf": {"last-handled-configuration": newer}})
    patch = kopf.Patch()
    ProgressStorage().purge(key=kopf.HandlerId("reconcile"), body=body, patch=patch)
    assert "last-handled-configuration" not in patch.get("status", {}).get("kopf", {}), patch
    assert patch["metadata"]["annotations"] == {"esenas.dev/reconcile": None, **MOVED}
