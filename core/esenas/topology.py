"""Topologies: what a NAS controller proposes, as a compact array of decisions.

A topology is a kind (``partition``, ``edges``, ...) plus one small integer per decision:
the colour of each weight for chromatic networks, or the chosen edge for edge pruning.
Its id is a stable hash of those numbers, so the same topology has the same id on every
machine and in every run. The wire form (:func:`encode_topologies`) packs a batch of
topologies into bytes with the smallest integer type that holds the decisions.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

KINDS: Final = ("dense", "partition", "edges", "toeplitz", "circulant")
#: Former kind names still read from old files (checkpoints, saved policies, job specs):
#: ``masked`` was aggregate edge pruning, i.e. ``edges`` with searchSpace ``aggregate_edges``.
RENAMED_KINDS: Final = {"masked": "edges"}
#: Kind codes of the wire form, by position; code 3 (the former ``masked``) is never sent again,
#: and a code never moves, so the other kinds keep their bytes.
_WIRE_KINDS: Final = ("dense", "partition", "edges", "masked", "toeplitz", "circulant")
_DTYPES: Final = (np.uint8, np.uint16, np.uint32)
_HEADER: Final = struct.Struct("<BBI")  # kind code, dtype code, number of decisions


@dataclass(frozen=True, eq=False)
class Topology:
    """One architecture: ``kind`` and its decisions (non-negative integers, read-only)."""

    kind: str
    decisions: npt.NDArray[np.integer[Any]] = field(default_factory=lambda: np.zeros(0, np.uint8))

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", RENAMED_KINDS.get(self.kind, self.kind))
        if self.kind not in KINDS:
            raise ValueError(f"topology kind: must be one of {', '.join(KINDS)}; got {self.kind!r}")
        raw = np.asarray(self.decisions).reshape(-1)
        if raw.dtype == np.uint8:  # what controllers produce: no range check or narrowing to do
            d = raw.copy()
        else:
            if raw.size and raw.min() < 0:
                raise ValueError(f"topology decisions: must be >= 0, got {int(raw.min())}")
            # Stored in the smallest unsigned type that holds them: a plan of 100,000 chromatic
            # H41 topologies is 94 MB as uint8 and 754 MB as int64.
            d = np.array(raw, dtype=_DTYPES[_dtype_code(raw)])
        d.setflags(write=False)
        object.__setattr__(self, "decisions", d)
        object.__setattr__(self, "_id", None)

    @classmethod
    def sampled(cls, kind: str, decisions: npt.NDArray[np.uint8]) -> Topology:
        """A controller's own sample, built without the checks and copy of the constructor:
        ``kind`` is one of KINDS and ``decisions`` a read-only 1-D uint8 array (a row of the
        controller's read-only sample block), as the constructor would have stored it."""
        topo = object.__new__(cls)
        object.__setattr__(topo, "kind", kind)
        object.__setattr__(topo, "decisions", decisions)
        object.__setattr__(topo, "_id", None)
        return topo

    @property
    def id(self) -> str:
        """Stable 16-hex-digit id: the same decisions give the same id everywhere.

        Computed once: a population of 100,000 pairs asks for each id several times per iteration.
        """
        cached: str | None = self.__dict__["_id"]
        if cached is None:
            h = hashlib.blake2b(self.kind.encode(), digest_size=8)
            h.update(self.decisions.dtype.str.encode())  # the storage type is a function of the values
            h.update(self.decisions.tobytes())
            cached = h.hexdigest()
            object.__setattr__(self, "_id", cached)
        return cached

    @property
    def key(self) -> tuple[str, str, bytes]:
        """What the id hashes, as a dict key: equal keys, equal ids. Grouping a plan's 80,000
        topologies by key costs ~1 us each against ~5 us for their blake2b ids."""
        return (self.kind, self.decisions.dtype.str, self.decisions.tobytes())

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Topology)
            and self.kind == other.kind
            and np.array_equal(self.decisions, other.decisions)
        )

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Topology({self.kind!r}, n={self.decisions.size}, id={self.id})"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "decisions": self.decisions.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Topology:
        return cls(str(data["kind"]), np.asarray(data.get("decisions", []), dtype=np.int64))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))


@dataclass(frozen=True)
class SearchSpace:
    """What can be searched: ``choices[i]`` options for decision ``i`` (empty: nothing to search).

    ``distinct`` marks edge spaces whose decisions within a group should differ (k edges
    out of E); ``groups[i]`` names the group (layer) of decision ``i`` for independent_edges.
    """

    kind: str
    choices: npt.NDArray[np.int64]
    distinct: bool = False
    groups: npt.NDArray[np.int64] | None = None

    @property
    def num_decisions(self) -> int:
        return int(self.choices.size)

    @property
    def max_choices(self) -> int:
        return int(self.choices.max()) if self.choices.size else 0

    def sample(self, rng: np.random.Generator) -> Topology:
        """A uniformly random topology (edge spaces: distinct edges per group)."""
        if not self.distinct:
            return Topology(self.kind, (rng.random(self.choices.size) * self.choices).astype(np.int64))
        out = np.empty(self.choices.size, dtype=np.int64)
        groups = self.group_ids()
        for g in np.unique(groups):
            idx = np.flatnonzero(groups == g)
            n = int(self.choices[idx[0]])
            out[idx] = rng.choice(n, size=idx.size, replace=idx.size > n)
        return Topology(self.kind, out)

    def group_ids(self) -> npt.NDArray[np.int64]:
        """The group of each decision (all 0 without groups)."""
        return self.groups if self.groups is not None else np.zeros(self.choices.size, np.int64)

    def mutate(self, topo: Topology, rate: float, rng: np.random.Generator) -> Topology:
        """Resample each decision with probability ``rate``; at least one always changes.

        In distinct spaces a decision moves only to a choice its group does not use yet, so a
        mutated edge topology still keeps exactly k distinct edges.
        """
        d = topo.decisions.copy()
        n = d.size
        if n == 0:
            return topo
        flip = rng.random(n) < rate
        flip[rng.integers(n)] = True
        idx = np.flatnonzero(flip)
        if self.distinct:
            d = d.astype(np.int64)
            groups = self.group_ids()
            used = {int(g): set(d[groups == g].tolist()) for g in np.unique(groups[idx])}
            for i in idx.tolist():
                taken = used[int(groups[i])]
                v = _draw_unused(int(self.choices[i]), taken, rng)
                if v is not None:
                    taken.discard(int(d[i]))
                    taken.add(v)
                    d[i] = v
            return Topology(topo.kind, d)
        c = self.choices[idx]
        # shift by 1..c-1 so a flipped decision really changes (when it has a choice)
        shift = 1 + (rng.random(idx.size) * np.maximum(c - 1, 1)).astype(np.int64)
        d[idx] = np.where(c > 1, (d[idx] + shift) % c, d[idx])
        return Topology(topo.kind, d)

    def redraw_repeats(self, rows: npt.NDArray[np.integer[Any]], probs: npt.NDArray[np.float64], rng: np.random.Generator) -> None:
        """Make each row's decisions distinct within their groups, in place: the second and later
        use of a choice is redrawn from that decision's ``probs`` row over the group's unused
        choices (uniformly where they have no mass). No-op for spaces that are not distinct."""
        if not self.distinct or rows.size == 0:
            return
        groups = self.group_ids()
        key = rows.astype(np.int64) + groups[None, :] * max(self.max_choices, 1)
        srt = np.sort(key, axis=1)
        for r in np.flatnonzero(np.any(srt[:, 1:] == srt[:, :-1], axis=1)).tolist():
            seen: dict[int, set[int]] = {}
            for j in range(rows.shape[1]):
                taken = seen.setdefault(int(groups[j]), set())
                v = int(rows[r, j])
                if v in taken:
                    c = int(self.choices[j])
                    free = np.ones(c, bool)
                    free[list(taken)] = False
                    if not free.any():  # more decisions than choices: cannot be distinct
                        continue
                    w = np.where(free, probs[j, :c], 0.0)
                    total = w.sum()
                    w = w / total if total > 0 else free / free.sum()
                    v = int(rng.choice(c, p=w))
                    rows[r, j] = v
                taken.add(v)

    def validate(self, topo: Topology) -> None:
        if topo.kind != self.kind:
            raise ValueError(f"topology kind: expected {self.kind!r}, got {topo.kind!r}")
        if topo.decisions.size != self.choices.size:
            raise ValueError(
                f"topology decisions: expected {self.choices.size}, got {topo.decisions.size}"
            )
        if topo.decisions.size and np.any(topo.decisions >= self.choices):
            raise ValueError("topology decisions: a decision is out of range for its choices")


def _draw_unused(c: int, taken: set[int], rng: np.random.Generator) -> int | None:
    """A uniform choice in [0, c) outside ``taken``; None when every choice is taken."""
    if len(taken) * 2 < c:  # mostly free: rejection needs under 2 draws on average
        while True:
            v = int(rng.integers(c))
            if v not in taken:
                return v
    free = np.setdiff1d(np.arange(c), np.fromiter(taken, np.int64, len(taken)))
    return int(free[rng.integers(free.size)]) if free.size else None


def _dtype_code(decisions: npt.NDArray[Any]) -> int:
    """Index into ``_DTYPES`` of the smallest unsigned type holding ``decisions``."""
    if decisions.dtype == np.uint8:  # every controller sample: no scan of the values needed
        return 0
    top = int(decisions.max()) if decisions.size else 0
    return 0 if top < 2**8 else 1 if top < 2**16 else 2


def decision_rows(topologies: Sequence[Topology]) -> npt.NDArray[Any]:
    """The decisions of topologies of one length as one (n, length) block. One concatenate:
    np.stack over 80,000 chromatic H41 rows took 0.23 s, this 0.02 s."""
    sizes = {t.decisions.size for t in topologies}
    if len(sizes) > 1:
        raise ValueError(f"topologies: decisions of different lengths {sorted(sizes)}")
    if not topologies:
        return np.zeros((0, 0), np.uint8)
    return np.concatenate([t.decisions for t in topologies]).reshape(len(topologies), sizes.pop())


def encode_topologies(topologies: Sequence[Topology]) -> bytes:
    """Pack topologies for the wire: per topology a small header, then its decisions."""
    if len(topologies) > 1 and (same := _encode_uniform(topologies)) is not None:
        return same
    parts = [struct.pack("<I", len(topologies))]
    for t in topologies:
        code = _dtype_code(t.decisions)
        parts.append(_HEADER.pack(_WIRE_KINDS.index(t.kind), code, t.decisions.size))
        parts.append(t.decisions.astype(_DTYPES[code]).tobytes())
    return b"".join(parts)


def _encode_uniform(topologies: Sequence[Topology]) -> bytes | None:
    """The blob of topologies that share a kind and a length of uint8 decisions (every lease of
    controller samples), built as one block instead of one record at a time: a worker's lease
    of 32 chromatic H41 topologies took ~90 us to pack record by record. None for any other list."""
    first = topologies[0]
    n = first.decisions.size
    if any(t.kind != first.kind or t.decisions.dtype != np.uint8 or t.decisions.size != n for t in topologies):
        return None
    block = np.empty((len(topologies), _HEADER.size + n), np.uint8)
    block[:, : _HEADER.size] = np.frombuffer(_HEADER.pack(_WIRE_KINDS.index(first.kind), 0, n), np.uint8)
    if n:
        block[:, _HEADER.size :] = np.concatenate([t.decisions for t in topologies]).reshape(len(topologies), n)
    return struct.pack("<I", len(topologies)) + block.tobytes()


def _decode_uniform(blob: bytes, count: int) -> list[Topology] | None:
    """The topologies of a blob whose records all have the first one's uint8 header, as
    read-only rows of one block (a relay decodes 10,000 per lease); None for any other blob."""
    kind, code, n = _HEADER.unpack_from(blob, 4)
    width = _HEADER.size + n
    if code != 0 or kind >= len(_WIRE_KINDS) or len(blob) != 4 + count * width:
        return None
    block = np.frombuffer(blob, np.uint8, offset=4).reshape(count, width)
    if not (block[:, : _HEADER.size] == block[0, : _HEADER.size]).all():
        return None
    name = RENAMED_KINDS.get(_WIRE_KINDS[kind], _WIRE_KINDS[kind])
    return [Topology.sampled(name, row) for row in block[:, _HEADER.size :]]


def decode_topologies(blob: bytes) -> list[Topology]:
    """Inverse of :func:`encode_topologies`."""
    (count,) = struct.unpack_from("<I", blob, 0)
    if count > 1 and (same := _decode_uniform(blob, count)) is not None:
        return same
    off = 4
    out: list[Topology] = []
    for _ in range(count):
        kind, code, n = _HEADER.unpack_from(blob, off)
        off += _HEADER.size
        dt = np.dtype(_DTYPES[code])
        d = np.frombuffer(blob, dtype=dt, count=n, offset=off)
        off += n * dt.itemsize
        out.append(Topology(_WIRE_KINDS[kind], d))
    if off != len(blob):
        raise ValueError(f"topology blob: {len(blob) - off} trailing bytes")
    return out


def group_by_topology(topologies: Sequence[Topology]) -> tuple[list[Topology], npt.NDArray[np.int64]]:
    """Unique topologies (first-seen order) and, per evaluation, the position of its topology."""
    index: dict[tuple[str, str, bytes], int] = {}
    uniq: list[Topology] = []
    keys = [t.key for t in topologies]  # each key once: 200,000 evaluations per iteration at 100,000 pairs
    for t, k in zip(topologies, keys, strict=True):
        if k not in index:
            index[k] = len(uniq)
            uniq.append(t)
    return uniq, np.array([index[k] for k in keys], dtype=np.int64)
