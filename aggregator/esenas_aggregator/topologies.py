"""How an iteration's topologies travel with the items that use them.

A worker gets the decisions of its items' topologies (``encode_topologies``: ~1 KB each for
chromatic H41). A relay says it samples topologies itself (``samples_topologies`` on its
requests): it then gets, for each topology that is a controller sample, only its position in
the plan's :class:`esenas.sampling.BlockSampler`, whose wire form rides once per version in the
relay's Params. At 80,000 pairs that is 0.6 MB of positions per iteration instead of 76 MB of
decisions (docs/relay-tier.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from esenas.topology import Topology, encode_topologies


@dataclass(frozen=True)
class IterationTopologies:
    """An iteration's topology table, by the index its items name, and its samples."""

    table: Sequence[Topology] | Mapping[int, Topology] = ()
    #: Per table index, the sample position that rebuilds it (-1: not a sample, e.g. the incumbent).
    position: np.ndarray | None = None
    #: The version's serialised Params carrying the sampler, for callers that sample.
    sampling_params: bytes | None = None

    def payload(self, items: np.ndarray, samples: bool = False) -> tuple[bytes, bytes, bytes]:
        """The topologies of a lease's items: (table indices, their decisions, (table index,
        sample position) pairs), packed for ExchangeReply's topology_index, topologies and
        topology_samples. Pairs only for a caller that ``samples``."""
        if not self.table:
            return b"", b"", b""
        uniq = np.unique(items["topology"])
        pairs = b""
        if samples and self.position is not None and self.sampling_params is not None:
            pos = self.position[uniq]
            sampled = pos >= 0
            pairs = np.stack([uniq[sampled], pos[sampled]], axis=1).astype("<u4").tobytes()
            uniq = uniq[~sampled]
        if not uniq.size:
            return b"", b"", pairs
        take = getattr(self.table, "take", None)  # a SampledTable's, in one pass
        topos = take(uniq) if take is not None else [self.table[int(i)] for i in uniq]
        blob = encode_topologies(topos)
        return uniq.astype("<u4").tobytes(), blob, pairs
