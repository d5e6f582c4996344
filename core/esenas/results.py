"""The plain-data types exchanged between the ES-ENAS core and whoever runs rollouts.

A :class:`Plan` is one iteration's work; :class:`Results` are the rollouts' outcomes for
any subset of its items, as vectorised arrays (the runtime decodes a batch with one
``np.frombuffer``); :class:`IterationReport` is what ``tell`` learned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from esenas import es
from esenas.sampling import BlockSampler
from esenas.topology import Topology, encode_topologies

#: One work item: position in the iteration, eps seed (0 for exact evals), topology index, kind.
#: Packed, it is also the 17-byte work record on the wire (``esenas_api.wire.WORK_DTYPE`` is this).
ITEM_DTYPE: Final = np.dtype([("index", "<u4"), ("seed", "<u8"), ("topology", "<u4"), ("kind", "u1")])
KIND_PAIR: Final = 0  #: an antithetic pair: theta + sigma*eps and theta - sigma*eps
KIND_EXACT: Final = 1  #: an exact eval: one rollout of the unperturbed centre theta

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U32 = npt.NDArray[np.uint32]


@dataclass(frozen=True)
class Plan:
    """One iteration's work. ``version`` names the parameters (it bumps on every tell)."""

    iteration: int
    version: int
    params: F32
    obs_mean: F32
    obs_std: F32
    sigma: float
    #: The table that items' ``topology`` fields index. When the controller samples in blocks,
    #: an :class:`~esenas.sampling.SampledTable` (entry p for item p, drawn when first read);
    #: else the distinct topologies.
    topologies: Sequence[Topology]
    items: np.ndarray  # ITEM_DTYPE
    #: When the controller samples in blocks: its sampler, and per entry of ``topologies``
    #: the sampler's position that rebuilds it (-1: not a sample, e.g. the incumbent).
    sampler: BlockSampler | None = None
    sample_position: npt.NDArray[np.int64] | None = None

    def topology_blob(self) -> bytes:
        """The topologies, packed compactly for the wire (see ``decode_topologies``)."""
        return encode_topologies(self.topologies)

    @property
    def episodes(self) -> int:
        """Rollouts this plan asks for: two per pair, one per exact eval."""
        return int(2 * np.count_nonzero(self.items["kind"] == KIND_PAIR) + np.count_nonzero(self.items["kind"] == KIND_EXACT))


@dataclass
class Results:
    """Outcomes of some items. Pair rewards include the reward shift; exact evals are raw.

    One type for every producer: the local trainer's rollouts, a worker's batch, and the
    aggregator's whole iteration (``WorkQueue.results``), which ``ESENAS.tell`` takes as is.

    ``reward_neg`` is NaN for exact evals; ``steps`` counts env steps of all the item's
    rollouts. ``obs_*`` are the observation statistics of those rollouts (ARS V2 merge).
    """

    index: U32
    reward_pos: F64
    reward_neg: F64
    steps: U32
    obs_count: float = 0.0
    obs_sum: F64 = field(default_factory=lambda: np.zeros(0))
    obs_sumsq: F64 = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return int(self.index.size)

    @classmethod
    def empty(cls, obs_dim: int) -> Results:
        return cls(
            np.zeros(0, np.uint32), np.zeros(0), np.zeros(0), np.zeros(0, np.uint32),
            0.0, np.zeros(obs_dim), np.zeros(obs_dim),
        )

    @classmethod
    def concat(cls, parts: Sequence[Results]) -> Results:
        """Merge result batches (obs statistics are sums, so they add)."""
        if not parts:
            raise ValueError("Results.concat: nothing to merge")
        dims = {p.obs_sum.size for p in parts if p.obs_count > 0}
        dim = dims.pop() if dims else parts[0].obs_sum.size
        obs_sum, obs_sumsq = np.zeros(dim), np.zeros(dim)
        for p in parts:
            if p.obs_count > 0:
                obs_sum += p.obs_sum
                obs_sumsq += p.obs_sumsq
        return cls(
            np.concatenate([p.index for p in parts]).astype(np.uint32),
            np.concatenate([p.reward_pos for p in parts]).astype(np.float64),
            np.concatenate([p.reward_neg for p in parts]).astype(np.float64),
            np.concatenate([p.steps for p in parts]).astype(np.uint32),
            float(sum(p.obs_count for p in parts)),
            obs_sum,
            obs_sumsq,
        )

    def checked(self, plan: Plan, min_pairs_fraction: float) -> Results:
        """These results sorted by item index, after checking they cover every exact eval and at least
        ``es.min_pairs(n, min_pairs_fraction)`` (``es.minPairsFraction``) pairs, each item at most once."""
        n = plan.items.size
        order = np.argsort(self.index, kind="stable")
        idx = self.index[order].astype(np.int64)
        if idx.size and (idx[0] < 0 or idx[-1] >= n or not (idx[1:] > idx[:-1]).all()):
            raise ValueError(f"tell: results must name items of 0..{n - 1}, each exactly once")
        kind = plan.items["kind"][idx]
        n_pairs = int(np.count_nonzero(plan.items["kind"] == KIND_PAIR))
        need = es.min_pairs(n_pairs, min_pairs_fraction)
        got_pairs = int(np.count_nonzero(kind == KIND_PAIR))
        if got_pairs < need or idx.size - got_pairs != n - n_pairs:
            raise ValueError(
                f"tell: results must cover every exact eval ({n - n_pairs}) and at least {need} of "
                f"{n_pairs} pairs (es.minPairsFraction), got {idx.size - got_pairs} and {got_pairs}"
            )
        pos, neg = self.reward_pos[order], self.reward_neg[order]
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(neg[kind == KIND_PAIR]))):
            raise ValueError("tell: rewards must be finite")
        return Results(idx.astype(self.index.dtype), pos, neg, self.steps[order], self.obs_count, self.obs_sum, self.obs_sumsq)


@dataclass(frozen=True)
class Carried:
    """Pairs of the previous iteration that arrived after it closed under the straggler policy
    (``es.minPairsFraction`` < 1): rolled out around the previous centre, they join the next
    iteration's ES step (one step stale), not its controller feedback or best policy."""

    seeds: npt.NDArray[np.uint64]
    reward_pos: F64
    reward_neg: F64
    steps: U32
    obs_count: float = 0.0
    obs_sum: F64 = field(default_factory=lambda: np.zeros(0))
    obs_sumsq: F64 = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return int(self.seeds.size)


@dataclass(frozen=True)
class IterationReport:
    """What one ``tell`` did: rewards (raw, unshifted), counts, and the topology in use."""

    iteration: int  # the iteration just completed
    version: int  # the parameter version now current
    reward_mean: float  # mean reward of this iteration's rollouts
    reward_max: float
    eval_reward: float | None  # mean of the exact evals (of all their topologies), if any
    score: float  # eval_reward if there are exact evals, else reward_mean: a progress figure
    best_reward: float  # the best policy's own evaluated reward so far (esenas.best)
    env_steps: int  # this iteration
    episodes: int  # this iteration
    total_env_steps: int
    total_episodes: int
    grad_norm: float
    topology_size: int  # trainable parameters of the best topology
    dense_params: int
    compression: float
    unique_topologies: int
    pareto_front: list[dict[str, float]] = field(default_factory=list)
    #: the controller's sampling entropy after this iteration's feedback, nats per decision
    #: (None for controllers without a distribution: see Controller.entropy)
    controller_entropy: float | None = None
    #: the trial (spec.trials) that ran this iteration, counted from 1; None without trials
    trial: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

