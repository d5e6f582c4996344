"""Where kopf keeps its state on a job: ``status.kopf``, never annotations.

kopf's diff base is a copy of the whole spec. In an annotation it shares Kubernetes' 256 KiB
limit on all annotations with kubectl's own copy (last-applied-configuration), so a large spec
made kopf's patches fail and left ``kubectl delete`` hanging on the finalizer. In the status it
counts only against etcd's 1.5 MiB per object.

Jobs handled by an older operator keep their state in ``esenas.dev/*`` annotations. These
storages read it from there when the status has none (so no handler runs twice after an
upgrade), and drop the annotation in the same patch that writes the status copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf
from esenas.spec import API_GROUP

#: status.kopf: the CRD keeps this object as kopf writes it (x-kubernetes-preserve-unknown-fields).
STATUS_NAME = "kopf"
#: The annotation storages of operators before status storage, read once and then removed.
LEGACY_DIFFBASE_KEY = "last-handled-configuration"
#: The marker kopf's annotation storages add beside their keys.
LEGACY_MARKER = f"{API_GROUP}/kopf-managed"


_STATUS_DIFFBASE = kopf.StatusDiffBaseStorage(name=STATUS_NAME)
_LEGACY_DIFFBASE = kopf.AnnotationsDiffBaseStorage(prefix=API_GROUP, key=LEGACY_DIFFBASE_KEY)


def _drop_annotations(body: kopf.Body, patch: kopf.Patch, keys: Iterable[str]) -> None:
    present = body.metadata.annotations
    for key in keys:
        if key in present:
            patch.metadata.annotations[key] = None


def migrate(body: kopf.Body, patch: kopf.Patch) -> None:
    """Move an older operator's diff base from its annotation into the status, unchanged.

    kopf stores a diff base only when the spec changed, so a job merely resumed after the upgrade
    would otherwise keep the annotation; every progress write of a handling cycle moves it.
    """
    legacy = _LEGACY_DIFFBASE.fetch(body=body)
    if legacy is None:
        return
    if _STATUS_DIFFBASE.fetch(body=body) is None:
        _STATUS_DIFFBASE.store(body=body, patch=patch, essence=legacy)
    _drop_annotations(body, patch, [*_LEGACY_DIFFBASE.make_keys(LEGACY_DIFFBASE_KEY, body=body), LEGACY_MARKER])


class DiffBaseStorage(kopf.MultiDiffBaseStorage):
    """The diff base in ``status.kopf.last-handled-configuration``; read from the legacy
    annotation when the status has none, which the next store removes."""

    def __init__(self) -> None:
        super().__init__([_STATUS_DIFFBASE, _LEGACY_DIFFBASE])  # fetch: status first; build: both cleaned out

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        _STATUS_DIFFBASE.store(body=body, patch=patch, essence=essence)
        _drop_annotations(body, patch, [*_LEGACY_DIFFBASE.make_keys(LEGACY_DIFFBASE_KEY, body=body), LEGACY_MARKER])


class ProgressStorage(kopf.MultiProgressStorage):
    """Handler progress in ``status.kopf.progress``; legacy annotations are read, then purged
    (with the legacy diff base, see :func:`migrate`) by the first write of a handling cycle."""

    def __init__(self) -> None:
        self.status = kopf.StatusProgressStorage(name=STATUS_NAME)
        self.legacy = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
        super().__init__([self.status, self.legacy])

    def store(self, *, key: Any, record: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        self.status.store(key=key, record=record, body=body, patch=patch)
        self.legacy.purge(key=key, body=body, patch=patch)
        migrate(body, patch)

    def purge(self, *, key: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        super().purge(key=key, body=body, patch=patch)
        migrate(body, patch)

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        self.status.touch(body=body, patch=patch, value=value)
        _drop_annotations(body, patch, self.legacy.make_keys(self.legacy.touch_key, body=body))
