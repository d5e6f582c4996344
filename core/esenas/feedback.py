"""The policy-gradient controller's feedback, summed while the workers roll out.

REINFORCE's step (:mod:`esenas.controllers.policy_gradient`) needs, over the plan's distinct
topologies j with mean fitness f_j and decisions a_j, the sum of (f_j - b) * onehot(a_j): one
bincount over n * decisions elements, ~0.3 s of the iteration's barrier at 80,000 pairs of
chromatic H41. Every term is known once an item's rewards are in (the baseline b is fixed
for the iteration), so :class:`StreamedScore` adds each item's share as it arrives, and
``tell`` only finishes the few left.

Results arrive in any order, and floating-point sums depend on their order. So each item's
weight is rounded to a multiple of a power of two, q, scaled to the baseline (about 2^-30 of
it): sums of such values are exact while their magnitudes stay below 2^53, and the counts
are the same bit for bit in any order, streamed or not, before or after a restart. When a
sum could pass 2^53 the iteration's update is left to the unrounded path.

Once the controller has concentrated, a topology differs from the distribution's mode in a few
of its decisions (chromatic H41: 943). When its probabilities say so (:data:`SPARSE_SHARE`),
the iteration's slices are summed as the mode's count plus corrections where a row differs,
not element by element.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from esenas.controllers.policy_gradient import CHUNK_ELEMENTS  # rows * decisions per bincount
from esenas.objectives import combine
from esenas.results import KIND_PAIR, Results
from esenas.sampling import SampledTable
from esenas.spec import ObjectivesSpec
from esenas.topology import Topology

F64 = npt.NDArray[np.float64]

#: Bits of the baseline's magnitude kept below the rounding quantum.
QUANTUM_BITS: Final = 30
#: Sums stay exact while below this; the mode's corrections can take a count to twice the
#: sum of the weights' magnitudes before it settles.
_EXACT_LIMIT: Final = float(2**52)
#: Slices are summed as the mode plus corrections when a topology is expected to differ from
#: the mode in at most this share of its decisions (measured: ~4x faster at 0.5% of them,
#: slower past ~20%).
SPARSE_SHARE: Final = 0.1


class StreamedScore:
    """sum_j (f_j - b) * onehot(a_j), streamed over one plan's items (a sampled plan, every item
    kept). Item i of group g (its distinct topology) carries (its fitness sum) / m_g - b * [i is
    g's first item], m_g being g's evaluations (2 a pair, 1 an exact eval), rounded to q."""

    def __init__(
        self, table: SampledTable, kind: npt.NDArray[np.uint8], objectives: ObjectivesSpec,
        reward_shift: float, baseline: float, choices: int,
    ) -> None:
        groups, self.index = table.grouped()
        self.table, self.objectives, self.shift, self.baseline = table, objectives, reward_shift, baseline
        self.pair = kind == KIND_PAIR
        self.sizes = table.sizes().astype(np.float64)
        self.evals = np.bincount(self.index, weights=np.where(self.pair, 2.0, 1.0), minlength=len(groups))
        self.first = np.zeros(self.index.size, bool)
        self.first[np.unique(self.index, return_index=True)[1]] = True
        self.q = 2.0 ** (math.ceil(math.log2(abs(baseline))) - QUANTUM_BITS)
        d = table.sampler.space.num_decisions
        self.shape = (d, choices)
        self.offsets = np.arange(d, dtype=np.int64)[None, :] * choices
        probs = table.sampler.tables().p
        self.mode = probs.argmax(axis=1).astype(np.int64)  # each decision's likeliest choice
        self.mode_flat = self.offsets[0] + self.mode
        # The share of decisions a drawn topology is expected to differ from the mode in: the
        # controller's concentration decides the way of summing once (checking each slice cost
        # ~10% on a uniform controller's).
        self.sparse = float(1.0 - probs.max(axis=1).mean()) <= SPARSE_SHARE
        self.counts = np.zeros(d * choices)
        self._rows_per_sum = max(1, CHUNK_ELEMENTS // max(1, d))
        self._summed = 0
        self.magnitude = 0.0  # sum of |rounded weight| so far: the counts are exact while < 2^53
        self.used = np.zeros(self.index.size, bool)
        self.values = np.full((self.index.size, 3), np.nan)  # (pos, neg, steps) as summed, to check

    @classmethod
    def start(
        cls, table: Sequence[Topology], kind: npt.NDArray[np.uint8], objectives: ObjectivesSpec,
        reward_shift: float, baseline: float | None, choices: int,
    ) -> StreamedScore | None:
        """The sum for a plan (its topologies grouped), or None when its feedback cannot stream:
        topologies not sampled, or no usable baseline (the controller's streamed_baseline)."""
        if not isinstance(table, SampledTable) or baseline is None or not math.isfinite(baseline) or baseline == 0:
            return None
        return cls(table, kind, objectives, reward_shift, baseline, choices)

    def add(self, done: npt.NDArray[np.bool_], reward_pos: F64, reward_neg: F64, steps: npt.ArrayLike, max_items: int) -> bool:
        """Sum up to ``max_items`` more of the items ``done`` marks (their rewards as given), once
        there are a bincount's worth (fewer would cost a whole counts array each); True once
        every item is summed."""
        left = self.index.size - self._summed
        if left and np.count_nonzero(done) - self._summed < min(self._rows_per_sum, left):
            return False  # too few new ones to sum yet: found without the scan below (polled often)
        new = np.flatnonzero(done & ~self.used)[:max_items]
        if new.size and new.size >= min(self._rows_per_sum, self.index.size - self._summed):
            self._sum(new, np.asarray(reward_pos)[new], np.asarray(reward_neg)[new], np.asarray(steps, np.float64)[new])
        return self._summed == self.index.size

    def _sum(self, items: npt.NDArray[np.int64], rp: F64, rn: F64, steps: F64) -> None:
        self.used[items] = True
        self._summed += items.size
        self.values[items] = np.stack([rp, rn, steps], axis=1)
        pair, g = self.pair[items], self.index[items]
        size = self.sizes[g]
        half = self.shift * steps / 2.0  # as ESENAS.tell: a pair's rollouts each credited half its steps
        fit = np.where(pair, combine(rp + half, size, self.objectives), combine(rp, size, self.objectives))
        fit = fit + np.where(pair, combine(np.where(pair, rn, 0.0) + half, size, self.objectives), 0.0)
        weight = np.rint((fit / self.evals[g] - self.baseline * self.first[items]) / self.q)
        self.magnitude += float(np.abs(weight).sum())
        rows = self.table.rows(items)
        step = self._rows_per_sum
        for start in range(0, items.size, step):
            self._add_rows(rows[start : start + step], weight[start : start + step])

    def _add_rows(self, rows: npt.NDArray[np.integer], w: F64) -> None:
        """counts += sum_i w_i * onehot(rows_i), exactly (every term a whole number of quanta), so
        either way of summing gives the same bits."""
        if self.sparse:
            self._add_sparse(rows, w, (rows != self.mode).ravel())
        else:
            flat = (rows + self.offsets).ravel()
            self.counts += np.bincount(flat, weights=np.repeat(w, self.shape[0]), minlength=self.counts.size)

    def _add_sparse(self, rows: npt.NDArray[np.integer], w: F64, differs: npt.NDArray[np.bool_]) -> None:
        """The mode's count for every row, then, where a row differs, its choice's in place of the
        mode's. ``differs`` is flat: a 1-D flatnonzero is ~6x faster than a 2-D nonzero here."""
        i, j = np.divmod(np.flatnonzero(differs), self.shape[0])
        self.counts[self.mode_flat] += w.sum()
        at = np.concatenate([self.offsets[0, j] + rows[i, j], self.mode_flat[j]])
        self.counts += np.bincount(at, weights=np.concatenate([w[i], -w[i]]), minlength=self.counts.size)

    def finish(self, r: Results) -> F64 | None:
        """The sum for the complete results ``r`` (sorted, every item): the items not yet summed
        are summed now. None when a sum could have lost precision, or an item was summed with
        rewards other than ``r``'s (then nothing streamed is used)."""
        if r.index.size != self.index.size:
            raise ValueError(f"feedback: {r.index.size} results for {self.index.size} items")
        self.add(np.ones(self.index.size, bool), r.reward_pos, r.reward_neg, r.steps, self.index.size)
        given = np.stack([r.reward_pos, np.where(self.pair, r.reward_neg, np.nan), r.steps.astype(np.float64)], axis=1)
        summed = self.values.copy()
        summed[~self.pair, 1] = np.nan
        if not self.magnitude < _EXACT_LIMIT or not np.array_equal(summed, given, equal_nan=True):
            return None
        return np.asarray(self.counts.reshape(self.shape) * self.q, np.float64)
