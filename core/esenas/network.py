"""The network layout: which numbers the ES optimiser trains, for each topology kind.

A network is a template (linear, or an MLP with tanh hidden layers) over layer sizes
``[obs, hidden..., act]``. The trainable vector is laid out as weights then biases:

* ``dense``: every weight (out x in per layer).
* ``partition`` (chromatic networks, Song et al., poster "RL with chromatic networks"):
  P shared weights; the topology colours each edge with one of them.
* ``edges`` (ES-ENAS edge pruning, arXiv 2101.07415 section 3; ``masked`` is its former name,
  still read from old files): every candidate edge has a weight shared across topologies (ENAS
  weight sharing, Pham et al. 2018); the topology keeps k of them, chosen from all edges
  (``aggregate_edges``), per layer (``independent_edges``), with ``residual_edges``
  candidates that join every pair of layers, or as ``path_edges``: each decision keeps a whole
  path from an observation through one unit of each hidden layer to an action, or one direct
  observation-to-action edge, so no kept edge feeds a unit that no action reads.
* ``toeplitz`` / ``circulant`` (Choromanski et al. 2018): n_out + n_in - 1, or max(n_out, n_in),
  numbers per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt

from esenas.spec import PolicySpec
from esenas.topology import SearchSpace, Topology, decision_rows

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_EMPTY: Final = np.zeros(0, np.int64)


@dataclass(frozen=True)
class Block:
    """One weight matrix from layer ``src`` to layer ``dst`` (shape n_out x n_in)."""

    src: int
    dst: int
    n_in: int
    n_out: int

    @property
    def size(self) -> int:
        return self.n_in * self.n_out


class Architecture:
    """Layer sizes plus topology kind: the parameter layout and how weights are built."""

    def __init__(self, policy: PolicySpec, obs_dim: int, act_dim: int) -> None:
        self.spec = policy
        self.kind = policy.topology
        self.layers: tuple[int, ...] = (obs_dim, *policy.hidden_layers, act_dim)
        n = len(self.layers)
        consecutive = [Block(i, i + 1, self.layers[i], self.layers[i + 1]) for i in range(n - 1)]
        self.dense_blocks: tuple[Block, ...] = tuple(consecutive)
        if self.kind == "edges" and policy.search_space in ("residual_edges", "path_edges"):
            pairs = [Block(i, j, self.layers[i], self.layers[j]) for j in range(1, n) for i in range(j)]
            self.blocks: tuple[Block, ...] = tuple(pairs)
        else:
            self.blocks = self.dense_blocks
        self.dense_weights = sum(b.size for b in self.dense_blocks)
        self.num_biases = sum(self.layers[1:])
        self.dense_params = self.dense_weights + self.num_biases
        self.candidate_weights = sum(b.size for b in self.blocks)
        self.offsets: tuple[int, ...] = tuple(np.cumsum([0] + [b.size for b in self.blocks]).tolist())
        self.num_weights = self._num_weights()
        self.num_params = self.num_weights + self.num_biases

    # ------------------------------------------------------------------ layout

    def _num_weights(self) -> int:
        if self.kind == "partition":
            return int(self.spec.partitions or 1)
        if self.kind == "toeplitz":
            return sum(b.n_in + b.n_out - 1 for b in self.blocks)
        if self.kind == "circulant":
            return sum(max(b.n_in, b.n_out) for b in self.blocks)
        return self.candidate_weights  # dense, edges

    @cached_property
    def _structured_index(self) -> list[I64]:
        """Per block, the index into that block's numbers for Toeplitz/circulant matrices."""
        out = []
        for b in self.blocks:
            i = np.arange(b.n_out)[:, None]
            j = np.arange(b.n_in)[None, :]
            if self.kind == "toeplitz":
                out.append((i - j + b.n_in - 1).reshape(-1))
            else:
                out.append(((i - j) % max(b.n_in, b.n_out)).reshape(-1))
        return out

    def search_space(self) -> SearchSpace:
        """What the controller chooses; an empty space for fixed topologies."""
        if self.kind == "partition":
            p = int(self.spec.partitions or 1)
            return SearchSpace("partition", np.full(self.dense_weights, p, np.int64))
        if self.kind == "edges":
            k = int(self.spec.edges or 1)
            if self.kind == "edges" and self.spec.search_space == "independent_edges":
                choices = np.repeat([b.size for b in self.blocks], k).astype(np.int64)
                groups = np.repeat(np.arange(len(self.blocks)), k).astype(np.int64)
                return SearchSpace(self.kind, choices, distinct=True, groups=groups)
            if self.spec.search_space == "path_edges":
                return SearchSpace(self.kind, np.full(self.path_decisions, self.path_choices, np.int64), distinct=True)
            return SearchSpace(self.kind, np.full(k, self.candidate_weights, np.int64), distinct=True)
        return SearchSpace(self.kind, _EMPTY)

    def default_topology(self) -> Topology:
        """The topology of a fixed (non-searched) network."""
        return Topology(self.kind)

    @cached_property
    def _block_offsets(self) -> dict[tuple[int, int], int]:
        """Where each block's weights start in the candidate vector, by (source layer, target layer)."""
        return {(b.src, b.dst): off for b, off in zip(self.blocks, self.offsets, strict=False)}

    @property
    def path_length(self) -> int:
        """Edges on a path from an observation to an action through one unit of each layer."""
        return len(self.layers) - 1

    @property
    def path_decisions(self) -> int:
        """path_edges: the paths kept, so that at most ``edges`` edges are (shared edges count once)."""
        return int(self.spec.edges or 1) // self.path_length

    @property
    def path_choices(self) -> int:
        """path_edges: every path through one unit of each layer, then every direct edge."""
        return int(np.prod(self.layers)) + self.layers[0] * self.layers[-1]

    def _path_edges(self, d: npt.NDArray[np.integer]) -> I64:
        """Candidate-edge indices of path_edges decisions: a path's edges, or the direct edge."""
        n_paths = self.path_choices - self.layers[0] * self.layers[-1]
        paths, direct = d[d < n_paths], d[d >= n_paths] - n_paths
        units = np.unravel_index(paths, self.layers)
        at = self._block_offsets
        parts = [at[(i, i + 1)] + units[i + 1] * self.layers[i] + units[i] for i in range(self.path_length)]
        return np.concatenate([*parts, at[(0, self.path_length)] + direct]).astype(np.int64)

    def kept_edges(self, topo: Topology) -> I64:
        """Sorted unique global candidate-edge indices an edge topology keeps."""
        d = topo.decisions
        if self.kind == "edges" and self.spec.search_space == "path_edges":
            return np.unique(self._path_edges(d))
        if self.kind == "edges" and self.spec.search_space == "independent_edges":
            k = int(self.spec.edges or 1)
            starts = np.repeat(np.asarray(self.offsets[:-1], np.int64), k)
            d = d + starts
        return np.unique(d)

    # ------------------------------------------------------------------ sizes

    def weight_params(self, topo: Topology) -> int:
        """Weights a policy with this topology really stores (the poster's '# weight-params')."""
        if self.kind == "edges":
            return int(self.kept_edges(topo).size)
        return self.num_weights

    def trainable_params(self, topo: Topology) -> int:
        return self.weight_params(topo) + self.num_biases

    def compression(self, topo: Topology) -> float:
        """1 - trainable/dense: 0.94 means 94% fewer numbers than the dense network."""
        return 1.0 - self.trainable_params(topo) / self.dense_params

    def sizes(self, topologies: Sequence[Topology]) -> I64:
        """:meth:`size` of many topologies; vectorised for partitions (a plan holds up to 100,000)."""
        if self.kind == "partition" and topologies and topologies[0].decisions.size:
            parts = int(self.spec.partitions or 1)
            out = np.empty(len(topologies), np.int64)
            word = np.uint32 if parts <= 32 else np.uint64
            # rows per chunk: its temporaries (a word per decision) stay in cache, not fresh pages
            step = max(1, (1 << 16) // topologies[0].decisions.size)
            for start in range(0, len(topologies), step):
                m = decision_rows(topologies[start : start + step])
                if parts <= 64:  # colours used = bits set in the OR of one bit per colour
                    bits = np.bitwise_or.reduce(np.left_shift(word(1), m.astype(word)), axis=1)
                    out[start : start + len(m)] = np.bitwise_count(bits)
                else:
                    m = np.sort(m, axis=1)
                    out[start : start + len(m)] = 1 + (m[:, 1:] != m[:, :-1]).sum(axis=1)
            return out
        return np.array([self.size(t) for t in topologies], np.int64)

    def size(self, topo: Topology) -> int:
        """Size for the multi-objective: colours used, edges kept, or structured weights."""
        if self.kind == "partition":
            return int(np.unique(topo.decisions).size) if topo.decisions.size else 0
        return self.weight_params(topo)

    # ------------------------------------------------------------------ parameters

    def init_params(self, rng: np.random.Generator) -> F64:
        """Initial parameters: zero biases; weights normal with the spec's ``initStd``, unset zeros for
        linear policies (as ARS) and for MLPs 1/sqrt(the inputs of each layer, or the observations for
        the weights a partition shares)."""
        params = np.zeros(self.num_params)
        std = self.spec.init_std
        if (std is None and self.spec.template == "linear") or std == 0.0:
            return params
        if self.kind == "partition":
            params[: self.num_weights] = rng.normal(0.0, std or 1.0 / np.sqrt(self.layers[0]), self.num_weights)
            return params
        pos = 0
        for b, size in zip(self.blocks, self._block_param_sizes(), strict=True):
            params[pos : pos + size] = rng.normal(0.0, std or 1.0 / np.sqrt(b.n_in), size)
            pos += size
        return params

    def _block_param_sizes(self) -> list[int]:
        if self.kind == "toeplitz":
            return [b.n_in + b.n_out - 1 for b in self.blocks]
        if self.kind == "circulant":
            return [max(b.n_in, b.n_out) for b in self.blocks]
        return [b.size for b in self.blocks]

    def weights(self, params: F64, topo: Topology) -> tuple[list[F64], list[F64]]:
        """Materialise one (n_out x n_in) matrix per block and one bias per layer."""
        w = params[: self.num_weights]
        biases = np.split(params[self.num_weights :], np.cumsum(self.layers[1:-1]))
        if self.kind == "partition":
            flat = w[topo.decisions] if topo.decisions.size else np.zeros(self.dense_weights)
        elif self.kind == "edges":
            flat = np.zeros(self.candidate_weights)
            kept = self.kept_edges(topo)
            flat[kept] = w[kept]
        elif self.kind in ("toeplitz", "circulant"):
            parts, pos = [], 0
            for idx, size in zip(self._structured_index, self._block_param_sizes(), strict=True):
                parts.append(w[pos : pos + size][idx])
                pos += size
            flat = np.concatenate(parts)
        else:
            flat = w
        mats = [
            flat[self.offsets[i] : self.offsets[i + 1]].reshape(b.n_out, b.n_in)
            for i, b in enumerate(self.blocks)
        ]
        return mats, list(biases)

    def compact(self, params: F64, topo: Topology) -> F64:
        """Only the numbers this topology uses (edge modes drop unkept edges)."""
        if self.kind == "edges":
            return np.concatenate([params[self.kept_edges(topo)], params[self.num_weights :]])
        return np.asarray(params, dtype=np.float64).copy()

    def expand(self, compact: F64, topo: Topology) -> F64:
        """Inverse of :meth:`compact`: the full trainable vector (unkept edges zero)."""
        compact = np.asarray(compact, dtype=np.float64)
        if self.kind == "edges":
            kept = self.kept_edges(topo)
            params = np.zeros(self.num_params)
            params[kept] = compact[: kept.size]
            params[self.num_weights :] = compact[kept.size :]
            return params
        if compact.size != self.num_params:
            raise ValueError(f"params: expected {self.num_params} numbers, got {compact.size}")
        return compact.copy()
