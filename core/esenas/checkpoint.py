"""Atomic, verified checkpoints of a run's whole state: one format, owned by the library, that
the aggregator and the in-process trainer (``esenas run --in-process``) both write, so either
runtime resumes the other's run.

A checkpoint is one file ``ckpt-<iteration>.esck``: a magic line, the SHA-256 of the
payload, then an ``.npz`` payload holding the numpy arrays and a JSON tree for the
rest (no pickle: a checkpoint folder must not be able to run code). It is written to a
temporary file, fsynced and renamed, and the previous one is kept, so a crash during a
write or a corrupt latest file falls back to the previous checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Final

import numpy as np

log = logging.getLogger(__name__)

MAGIC: Final = b"ESENAS-CKPT-1\n"
KEEP: Final = 2
_ND: Final = "__ndarray__"
_TUPLE: Final = "__tuple__"


class CheckpointError(RuntimeError):
    """No readable checkpoint although checkpoint files exist."""


def encode(state: Any) -> bytes:
    """Serialise a tree of dicts, lists, tuples, scalars and numpy arrays to checkpoint bytes."""
    arrays: list[np.ndarray[Any, Any]] = []

    def walk(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            arrays.append(x)
            return {_ND: len(arrays) - 1}
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, dict):
            for k in x:
                if not isinstance(k, str):
                    raise TypeError(f"checkpoint keys must be strings, got {type(k).__name__} {k!r}")
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, tuple):
            return {_TUPLE: [walk(v) for v in x]}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if x is None or isinstance(x, bool | int | float | str):
            return x
        raise TypeError(f"cannot checkpoint a value of type {type(x).__name__}")

    tree = json.dumps(walk(state), allow_nan=True)
    buf = io.BytesIO()
    members: dict[str, Any] = {f"a{i}": a for i, a in enumerate(arrays)}
    members["__tree__"] = np.frombuffer(tree.encode(), dtype=np.uint8)
    np.savez(buf, **members)
    payload = buf.getvalue()
    return MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def decode(data: bytes) -> Any:
    """Inverse of :func:`encode`; raises CheckpointError on any corruption."""
    if not data.startswith(MAGIC):
        raise CheckpointError("not an ES-ENAS checkpoint (bad magic)")
    head = len(MAGIC)
    digest, payload = data[head : head + 64], data[head + 65 :]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise CheckpointError("checksum mismatch (truncated or corrupt file)")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            tree = json.loads(z["__tree__"].tobytes().decode())
            arrays = {k: z[k] for k in z.files if k != "__tree__"}
    except (ValueError, OSError, KeyError) as exc:
        raise CheckpointError(f"unreadable payload: {exc}") from exc

    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            if _ND in x and len(x) == 1:
                return arrays[f"a{x[_ND]}"]
            if _TUPLE in x and len(x) == 1:
                return tuple(walk(v) for v in x[_TUPLE])
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    return walk(tree)


class CheckpointStore:
    """A folder of checkpoints: atomic writes, the last KEEP kept, fall-back on corruption."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def files(self) -> list[Path]:
        """Checkpoint files, newest first."""
        return sorted(self.folder.glob("ckpt-*.esck"), reverse=True)

    def save(self, iteration: int, data: bytes) -> Path:
        """Write ``data`` (from :func:`encode`) atomically as the checkpoint of ``iteration``."""
        final = self.folder / f"ckpt-{iteration:010d}.esck"
        tmp = self.folder / f".{final.name}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        dfd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dfd)  # make the rename itself durable
        finally:
            os.close(dfd)
        for old in self.files()[KEEP:]:
            old.unlink(missing_ok=True)
        return final

    def load_latest(self) -> tuple[Path, Any] | None:
        """The newest readable checkpoint, or None when the folder has none at all."""
        files = self.files()
        errors: list[str] = []
        for path in files:
            try:
                return path, decode(path.read_bytes())
            except (CheckpointError, OSError) as exc:
                log.error("checkpoint %s is unusable (%s); falling back to the previous one", path, exc)
                errors.append(f"{path.name}: {exc}")
        if files:
            raise CheckpointError(f"no readable checkpoint in {self.folder}: " + "; ".join(errors))
        return None
