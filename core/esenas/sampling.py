"""Seeded blocks of controller samples: a plan's topologies as a distribution and a few seeds.

The policy-gradient controller draws a plan's topologies block by block, each block of
``SAMPLE_BLOCK`` from its own seed. A :class:`BlockSampler` (the search space, the logits and
the block seeds: ~130 KB for chromatic H41/17) then stands for every topology of the plan, and
any holder of it rebuilds topology ``p`` alone, bit for bit, by drawing its block again. The
aggregator sends relays that sampler once per parameter version and, per leased topology, its
position (4 bytes) instead of its decisions (~1 KB): at 80,000 pairs, ~1 MB per iteration
instead of 76 MB (docs/relay-tier.md). Workers still get decisions: a worker evaluates eight
topologies, and the sampler is larger than eight.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from esenas.alias import Tables, build_tables, draw_rows
from esenas.topology import KINDS, SearchSpace, Topology

F64 = npt.NDArray[np.float64]

#: Topologies drawn from one seed. Small enough that rebuilding one topology costs one small
#: draw (64 chromatic H41 rows: ~0.3 ms), large enough that 80,000 pairs need only 1,250 seeds.
SAMPLE_BLOCK: Final = 64
_HEADER: Final = struct.Struct("<BBIIII")  # kind, flags, decisions, columns, count, block


def softmax_probs(logits: F64, choices: npt.NDArray[np.int64]) -> F64:
    """Each row's softmax over its first ``choices[i]`` columns (0 beyond)."""
    valid = np.arange(logits.shape[1])[None, :] < choices[:, None]
    z = np.where(valid, logits, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), np.float64)


@dataclass
class BlockSampler:
    """``count`` topologies of ``space`` from softmax(``logits``): block b (rows b*SAMPLE_BLOCK
    onwards) drawn from PCG64(``seeds[b]``) by Walker's alias method, one uniform per decision."""

    space: SearchSpace
    logits: F64
    seeds: npt.NDArray[np.uint64]
    count: int
    block: int = SAMPLE_BLOCK
    _tables: Tables | None = field(default=None, repr=False)
    _cache: dict[int, list[Topology]] = field(default_factory=dict, repr=False)
    _rows: dict[int, npt.NDArray[Any]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.seeds.size != -(-self.count // self.block):
            raise ValueError(f"sampler: {self.seeds.size} seeds for {self.count} topologies in blocks of {self.block}")

    def tables(self) -> Tables:
        """The alias tables and the probabilities (:func:`esenas.alias.build_tables`), built once."""
        if self._tables is None:
            self._tables = build_tables(softmax_probs(self.logits, self.space.choices), self.space.choices)
        return self._tables

    def draw_block(self, b: int) -> list[Topology]:
        """The topologies of block ``b``: the same on every machine for the same sampler."""
        return self._topologies(self._draw_rows(b))

    def _draw_rows(self, b: int) -> npt.NDArray[Any]:
        rows = min(self.block, self.count - b * self.block)
        g = np.random.Generator(np.random.PCG64(int(self.seeds[b])))
        picks = draw_rows(self.space, self.tables(), g, rows)
        picks.setflags(write=False)
        return picks

    def _topologies(self, picks: npt.NDArray[Any]) -> list[Topology]:
        if picks.dtype == np.uint8:  # rows of a read-only block are what the constructor stores
            return [Topology.sampled(self.space.kind, row) for row in picks]
        return [Topology(self.space.kind, row) for row in picks]

    def topologies(self) -> list[Topology]:
        """All ``count`` topologies, in order."""
        return [t for b in range(self.seeds.size) for t in self.draw_block(b)]

    def cached_block(self, b: int) -> list[Topology]:
        """Block ``b``, drawn once and kept."""
        got = self._cache.get(b)
        if got is None:
            picks = self._rows[b] = self._draw_rows(b)
            got = self._cache[b] = self._topologies(picks)
        return got

    def cached_rows(self, b: int) -> npt.NDArray[Any]:
        """Block ``b``'s decisions, one read-only row per topology (the arrays its topologies view)."""
        self.cached_block(b)
        return self._rows[b]

    def at(self, positions: npt.ArrayLike) -> list[Topology]:
        """The topologies at ``positions``, drawing each block they fall in once (kept)."""
        out = []
        for pos in np.asarray(positions, np.int64).tolist():
            if not 0 <= pos < self.count:
                raise ValueError(f"sampler: position {pos} outside 0..{self.count - 1}")
            b = pos // self.block
            out.append(self.cached_block(b)[pos - b * self.block])
        return out

    def to_bytes(self) -> bytes:
        """The wire form: header, choices, groups (distinct spaces), logits, seeds."""
        d, c = self.logits.shape
        flags = int(self.space.distinct) | (2 if self.space.groups is not None else 0)
        parts = [
            _HEADER.pack(KINDS.index(self.space.kind), flags, d, c, self.count, self.block),
            self.space.choices.astype("<i8").tobytes(),
        ]
        if self.space.groups is not None:
            parts.append(self.space.groups.astype("<i8").tobytes())
        parts += [self.logits.astype("<f8").tobytes(), self.seeds.astype("<u8").tobytes()]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, blob: bytes) -> BlockSampler:
        """Inverse of :meth:`to_bytes`; ValueError naming what is wrong with a bad blob."""
        if len(blob) < _HEADER.size:
            raise ValueError(f"sampler: {len(blob)} bytes, shorter than its header")
        kind, flags, d, c, count, block = _HEADER.unpack_from(blob)
        if kind >= len(KINDS) or block == 0:
            raise ValueError(f"sampler: bad header (kind {kind}, block {block})")
        blocks = -(-count // block)
        groups = bool(flags & 2)
        want = _HEADER.size + 8 * (d * (1 + groups) + d * c + blocks)
        if len(blob) != want:
            raise ValueError(f"sampler: {len(blob)} bytes, expected {want}")
        off = _HEADER.size

        def take(dtype: str, n: int) -> npt.NDArray[Any]:
            nonlocal off
            a = np.frombuffer(blob, dtype, count=n, offset=off)
            off += 8 * n
            return a

        choices = take("<i8", d).astype(np.int64)
        group_ids = take("<i8", d).astype(np.int64) if groups else None
        logits = take("<f8", d * c).astype(np.float64).reshape(d, c)
        seeds = take("<u8", blocks).astype(np.uint64)
        space = SearchSpace(KINDS[kind], choices, distinct=bool(flags & 1), groups=group_ids)
        return cls(space, logits, seeds, count, block)


class SampledTable(Sequence[Topology]):
    """A plan's topology table when its controller samples in blocks: entry ``p`` is the
    sampler's topology ``p``, or ``overrides[p]`` (the incumbent that exact evals re-score).

    Nothing is drawn when the plan is made: ``ask`` at 80,000 pairs took ~0.9 s of the
    iteration's barrier drawing and grouping 80,000 topologies. A lease draws the blocks it
    needs, and :meth:`group` draws the rest and groups equal topologies in slices while the
    workers roll out, so ``tell`` finds the grouping (what the controller's update, the Pareto
    front and the best policy use) ready.
    """

    def __init__(
        self, sampler: BlockSampler, overrides: Mapping[int, Topology] | None = None,
        measure: Callable[[Sequence[Topology]], npt.NDArray[np.int64]] | None = None,
    ) -> None:
        self.sampler = sampler
        self.overrides = dict(overrides or {})
        self.measure = measure  # sizes of topologies (the multi-objective's), taken as they are grouped
        self._first: dict[tuple[str, str, bytes], int] = {}  # key -> index in _unique
        self._unique: list[Topology] = []
        self._sizes: list[npt.NDArray[np.int64]] = []
        self._measured = 0  # _unique[:_measured] have their sizes in _sizes
        self._index = np.zeros(sampler.count, np.int64)  # per entry, its group
        self._grouped = 0  # entries 0.._grouped-1 are grouped

    def __len__(self) -> int:
        return self.sampler.count

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        p = int(i) + (len(self) if int(i) < 0 else 0)
        if not 0 <= p < len(self):
            raise IndexError(f"topology table: entry {i} outside 0..{len(self) - 1}")
        got = self.overrides.get(p)
        return got if got is not None else self.sampler.at([p])[0]

    def take(self, entries: npt.ArrayLike) -> list[Topology]:
        """The entries at ``entries`` (in range), in one pass: a lease's topologies, without the
        per-entry checks and arrays of indexing one at a time."""
        out = []
        block, cached, overrides = self.sampler.block, self.sampler.cached_block, self.overrides
        for p in np.asarray(entries, np.int64).tolist():
            got = overrides.get(p)
            out.append(got if got is not None else cached(p // block)[p % block])
        return out

    def rows(self, entries: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        """The decisions of ``entries`` (ascending, in range), one row each: :meth:`take`'s
        topologies as one array, gathered block by block."""
        block = self.sampler.block
        blocks = entries // block
        starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]]).tolist()
        out = np.concatenate([
            self.sampler.cached_rows(int(blocks[a]))[entries[a:z] - int(blocks[a]) * block]
            for a, z in zip(starts, [*starts[1:], entries.size], strict=True)
        ]) if entries.size else np.zeros((0, self.sampler.space.num_decisions), np.uint8)
        for k in np.flatnonzero(np.isin(entries, list(self.overrides))).tolist():
            out[k] = self.overrides[int(entries[k])].decisions
        return out

    def __iter__(self) -> Iterator[Topology]:
        return iter(self.all())

    def __eq__(self, other: object) -> bool:  # entry by entry, as two lists compare
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self.all(), other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def _block(self, b: int) -> list[Topology]:
        start = b * self.sampler.block
        topos = self.sampler.cached_block(b)
        if any(start <= p < start + len(topos) for p in self.overrides):
            topos = [self.overrides.get(start + j, t) for j, t in enumerate(topos)]
        return topos

    def group(self, max_blocks: int | None = None) -> bool:
        """Group up to ``max_blocks`` more blocks (all when None); True once every entry is."""
        if self._grouped == self.sampler.count:
            return True
        blocks = self.sampler.seeds.size
        first = self._grouped // self.sampler.block
        end = blocks if max_blocks is None else min(blocks, first + max_blocks)
        for b in range(first, end):
            for j, t in enumerate(self._block(b)):
                k = t.key
                g = self._first.get(k)
                if g is None:
                    g = self._first[k] = len(self._unique)
                    self._unique.append(t)
                self._index[b * self.sampler.block + j] = g
            self._grouped = min(self.sampler.count, (b + 1) * self.sampler.block)
        if self.measure is not None and self._measured < len(self._unique):
            self._sizes.append(self.measure(self._unique[self._measured :]))
            self._measured = len(self._unique)
        return self._grouped == self.sampler.count

    def sizes(self) -> npt.NDArray[np.int64]:
        """``measure`` of each group of :meth:`grouped` (which it completes), in order."""
        if self.measure is None:
            raise ValueError("topology table: no measure to size topologies with")
        self.group()
        return np.concatenate(self._sizes) if self._sizes else np.zeros(0, np.int64)

    def grouped(self) -> tuple[list[Topology], npt.NDArray[np.int64]]:
        """Equal topologies grouped, as :func:`esenas.topology.group_by_topology` does:
        the distinct ones in first-seen order, and per entry the index of its group."""
        self.group()
        return self._unique, self._index

    def all(self) -> list[Topology]:
        """Every entry, in order."""
        return [t for b in range(self.sampler.seeds.size) for t in self._block(b)]

