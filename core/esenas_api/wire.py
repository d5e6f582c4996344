"""Packed record layouts of the esenas.api.v1 wire protocol, shared by aggregator and worker.

Batches travel as little-endian packed records inside protobuf ``bytes`` fields so a
whole batch encodes with one ``tobytes`` and decodes with one ``numpy.frombuffer``:
the per-result cost on the aggregator's hot path is vectorised, never a Python loop.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from esenas.results import ITEM_DTYPE
from esenas.results import KIND_EXACT as KIND_EXACT
from esenas.results import KIND_PAIR as KIND_PAIR

#: One result: 28 bytes on the wire (docs/contracts.md, gRPC), whatever the policy's size: the
#: item index, both rewards, env steps and the topology index, never a parameter vector.
RESULT_DTYPE: Final = np.dtype(
    [
        ("index", "<u4"),
        ("reward_pos", "<f8"),
        ("reward_neg", "<f8"),
        ("steps", "<u4"),
        ("topology", "<u4"),
    ]
)
#: One work item: 17 bytes, the library's own plan record (:data:`esenas.results.ITEM_DTYPE`)
#: sent as is; its ``kind`` is :data:`KIND_PAIR` or :data:`KIND_EXACT` (re-exported from there).
WORK_DTYPE: Final = ITEM_DTYPE
#: Metadata key that carries ``Bearer <token>`` on every worker RPC.
AUTH_METADATA_KEY: Final = "authorization"


class WireError(ValueError):
    """A packed field whose size or content cannot be a valid batch."""


def encode_items(items: npt.NDArray[np.void]) -> bytes:
    """Pack work items (any structured array with the WORK_DTYPE field names)."""
    out = np.empty(len(items), dtype=WORK_DTYPE)
    for name in WORK_DTYPE.names or ():
        out[name] = items[name]
    return out.tobytes()


def decode_items(buf: bytes) -> npt.NDArray[np.void]:
    """Unpack work items; raises WireError on a truncated buffer."""
    if len(buf) % WORK_DTYPE.itemsize:
        raise WireError(f"items: {len(buf)} bytes is not a multiple of {WORK_DTYPE.itemsize}")
    return np.frombuffer(buf, dtype=WORK_DTYPE)


def encode_results(
    index: npt.ArrayLike,
    reward_pos: npt.ArrayLike,
    reward_neg: npt.ArrayLike,
    steps: npt.ArrayLike,
    topology: npt.ArrayLike,
) -> bytes:
    """Pack one batch of results (arrays of equal length)."""
    idx = np.asarray(index)
    out = np.empty(len(idx), dtype=RESULT_DTYPE)
    out["index"] = idx
    out["reward_pos"] = reward_pos
    out["reward_neg"] = reward_neg
    out["steps"] = steps
    out["topology"] = topology
    return out.tobytes()


def decode_results(buf: bytes) -> npt.NDArray[np.void]:
    """Unpack a batch of results (read-only view); raises WireError on a truncated buffer."""
    if len(buf) % RESULT_DTYPE.itemsize:
        raise WireError(f"results: {len(buf)} bytes is not a multiple of {RESULT_DTYPE.itemsize}")
    return np.frombuffer(buf, dtype=RESULT_DTYPE)


def encode_obs_stats(count: float, total: npt.ArrayLike, sumsq: npt.ArrayLike) -> bytes:
    """Pack observation statistics: count, sum[obs_dim], sumsq[obs_dim] as float64."""
    return np.concatenate(
        [[float(count)], np.asarray(total, np.float64).ravel(), np.asarray(sumsq, np.float64).ravel()]
    ).astype("<f8").tobytes()


def decode_obs_stats(
    buf: bytes, obs_dim: int
) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Unpack observation statistics; raises WireError unless the size and values are valid."""
    want = (1 + 2 * obs_dim) * 8
    if len(buf) != want:
        raise WireError(f"obs_stats: expected {want} bytes for obs_dim {obs_dim}, got {len(buf)}")
    a = np.frombuffer(buf, dtype="<f8")
    if not np.all(np.isfinite(a)) or a[0] < 0 or np.any(a[1 + obs_dim :] < 0):
        raise WireError("obs_stats: non-finite or negative values")
    return float(a[0]), a[1 : 1 + obs_dim], a[1 + obs_dim :]


def encode_f32(a: npt.ArrayLike) -> bytes:
    """Pack a float32 vector (parameters, normaliser)."""
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def decode_f32(buf: bytes) -> npt.NDArray[np.float32]:
    """Unpack a float32 vector into a writable array."""
    if len(buf) % 4:
        raise WireError(f"float32 vector: {len(buf)} bytes is not a multiple of 4")
    return np.frombuffer(buf, dtype="<f4").astype(np.float32)


def read_token(path: str | Path) -> str:
    """Read the job's shared token from a file (a mounted Secret); never log it."""
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"--token-file {path}: cannot read: {exc.strerror}") from exc
    if not token:
        raise ValueError(f"--token-file {path}: the file is empty")
    return token


#: HTTP/2 settings that every channel and server of this protocol sets: the aggregator's and the
#: relays' servers, the workers' and the relays' channels. BDP probing (a PING for each burst of
#: received data, to grow the flow-control windows of long, fat links) cost the aggregator ~20%
#: of its CPU per result at 1,000 workers (bench/results/scale.md). Messages here are kilobytes
#: (a lease's items and topologies; parameters up to a few MB) inside one cluster, where the
#: default 64 KiB windows cost a large message a few extra round trips of a fraction of a ms each.
HTTP2_OPTIONS: Final = (("grpc.http2.bdp_probe", 0),)


def bearer(token: str) -> tuple[tuple[str, str]]:
    """gRPC call metadata that authenticates a worker RPC."""
    return ((AUTH_METADATA_KEY, f"Bearer {token}"),)


def token_matches(expected: str, header: str | None) -> bool:
    """Constant-time check of an ``authorization`` header against the job's token."""
    if header is None or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].encode(), expected.encode())
