"""Policy-gradient controller: independent softmax logits per decision (ENAS, Pham et al. 2018).

ES-ENAS (arXiv 2101.07415, section 3.1) trains the controller on the rewards of the ES
rollouts. ``reinforce``: Williams 1992. ``ppo``: the clipped surrogate of Schulman et al. 2017.

PPO's ratio and clip are per decision: the ratio over the joint log-probability of ~1,000
decisions leaves [1-e, 1+e] after any useful first step, so every later epoch was clipped to
nothing.

In edge spaces (k distinct edges) a sampled topology that repeats an edge has the repeat redrawn
from its decision's softmax over the unused edges; the update still scores each decision under
its own softmax, which ignores that small renormalisation.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from esenas.alias import Tables, build_tables
from esenas.controllers.base import F64, Controller
from esenas.sampling import SAMPLE_BLOCK, BlockSampler, softmax_probs
from esenas.topology import Topology, decision_rows

#: Most elements per chunk of rows in ``_score_grad``: small enough that its temporaries (the
#: flat index and the broadcast weights, 16 bytes an element) stay in cache and are reused, not
#: fresh pages (measured: 40,000 chromatic H41 topologies in 0.11 s of CPU at 2^16, 0.15 s at
#: 2^20, 0.8-1.1 s at 2^24, most of it page faults).
CHUNK_ELEMENTS: Final = 1 << 16

#: The baseline is held within this many of an iteration's standard deviations of its mean
#: fitness. A baseline that lags rising rewards by about one deviation (chromatic H41) is left
#: alone; one that lags by 50 (a linear policy's first iteration, rolled out before the
#: observation normaliser had any statistics, scored -3,547 against -24 the next) made every
#: advantage ~+50 and one step collapsed the controller onto the topologies it had drawn.
BASELINE_RANGE: Final = 2.0


class PolicyGradient(Controller):
    """Per-decision categorical distributions, trained by REINFORCE or PPO-clip."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        d, c = self.space.num_decisions, max(self.space.max_choices, 1)
        self.logits = np.zeros((d, c))
        self.baseline: float | None = None
        self._alias: Tables | None = None
        self._probs_cache: F64 | None = None

    def probs(self) -> F64:
        return softmax_probs(self.logits, self.space.choices)

    def sampler(self, n: int, rng: np.random.Generator | None = None) -> BlockSampler:
        """n topologies as seeded blocks (see :mod:`esenas.sampling`): a snapshot of the logits
        and one seed per block of SAMPLE_BLOCK, drawn from ``rng``."""
        g = rng or self.rng
        seeds = g.integers(1, 2**63, size=-(-n // SAMPLE_BLOCK), dtype=np.uint64)
        if self._alias is None:  # built once per controller update (~2 ms for chromatic H41)
            self._alias = build_tables(self._probs(), self.space.choices)
        return BlockSampler(self.space, self.logits.copy(), seeds, n, SAMPLE_BLOCK, _tables=self._alias)

    def ask(self, n: int, rng: np.random.Generator | None = None) -> list[Topology]:
        """n topologies, each decision drawn from its softmax by Walker's alias method, in
        seeded blocks: 100,000 chromatic H41 topologies cost O(n * decisions) and 1,563 seeds."""
        return self.sampler(n, rng).topologies()

    def set_logits(self, logits: F64) -> None:
        """Replace the logits (a restored or a prepared controller), dropping what was built from them."""
        self.logits = np.array(logits, np.float64)
        self._alias = self._probs_cache = None

    def _probs(self) -> F64:
        if self._probs_cache is None:
            self._probs_cache = self.probs()
        return self._probs_cache

    def entropy(self) -> float | None:
        """Mean entropy per decision in nats (ln C for a uniform controller)."""
        p = self.probs()
        return float(-(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1).mean()) if p.size else 0.0

    def bounded_baseline(self, fitness: F64) -> float:
        """This iteration's baseline: the moving average, held within :data:`BASELINE_RANGE` batch
        standard deviations of the batch's mean (the mean itself at first)."""
        mean, std = float(fitness.mean()), float(fitness.std())
        b = mean if self.baseline is None else self.baseline
        return min(max(b, mean - BASELINE_RANGE * std), mean + BASELINE_RANGE * std)

    def advantages(self, fitness: F64) -> F64:
        """(fitness - baseline) / batch std, then the baseline moves on.

        The baseline lags rising rewards, so advantages then carry a positive offset that
        imitates the controller's own samples and lowers its entropy. On chromatic H41 that
        exploitation helped (bench/results/learning-history.md): the batch mean as baseline, tried in
        its place, learned less on both seeds measured. The offset is bounded
        (:meth:`bounded_baseline`), so that it cannot drown the rewards' own differences.
        """
        b = self.bounded_baseline(fitness)
        adv = (fitness - b) / (float(fitness.std()) or 1.0)
        self.baseline = self.spec.baseline_decay * b + (1 - self.spec.baseline_decay) * float(fitness.mean())
        return np.asarray(adv, np.float64)

    def _score_grad(self, actions: np.ndarray, weights: F64, p: F64) -> F64:
        """sum_j,d w_jd * d log pi_d(a_jd) / d logits_d  =  sum_j w_jd (onehot(a_jd) - p_d).

        ``weights`` is (n,) for a weight per topology or (n, d) for one per decision.
        """
        d, c = p.shape
        counts = np.zeros(d * c)
        total: F64 | float = 0.0
        # In chunks of rows: the flat (n*d) index and weights of 100,000 topologies are 1.5 GB.
        step = max(1, CHUNK_ELEMENTS // max(1, d))
        offsets = np.arange(d, dtype=np.int64)[None, :] * c
        for start in range(0, actions.shape[0], step):
            a = actions[start : start + step]
            wc = weights[start : start + step]
            w = np.broadcast_to(wc[:, None] if wc.ndim == 1 else wc, a.shape)
            counts += np.bincount((offsets + a).reshape(-1), weights=w.reshape(-1), minlength=d * c)
            total = total + (wc.sum() if wc.ndim == 1 else w.sum(axis=0)[:, None])
        return np.asarray(counts.reshape(d, c) - total * p, np.float64)

    def _tell(self, topologies: list[Topology], fitness: F64) -> None:
        if not topologies or self.space.num_decisions == 0:
            return
        actions = decision_rows(topologies)
        adv = self.advantages(fitness)
        n, lr = len(topologies), self.spec.learning_rate
        rows = np.arange(actions.shape[1])[None, :]
        if self.spec.algorithm == "reinforce":
            p = self.probs()
            self.logits += lr * (self._score_grad(actions, adv, p) / n + self._entropy_grad(p))
        else:
            old_logp = np.log(self.probs())[rows, actions]  # (n, d): one ratio per decision
            eps = self.spec.ppo_clip
            for _ in range(self.spec.ppo_epochs):
                p = self.probs()
                ratio = np.exp(np.log(p)[rows, actions] - old_logp)
                # the clipped term has zero gradient where it is the active minimum
                active = np.where(adv[:, None] >= 0, ratio < 1 + eps, ratio > 1 - eps)
                w = np.where(active, adv[:, None] * ratio, 0.0)
                self.logits += lr * (self._score_grad(actions, w, p) / n + self._entropy_grad(p))
        self.logits -= self.logits.max(axis=1, keepdims=True)  # keep logits bounded
        self._alias = self._probs_cache = None

    def streamed_baseline(self) -> float | None:
        """REINFORCE's baseline for this iteration: its feedback can stream (:mod:`esenas.feedback`)."""
        return self.baseline if self.spec.algorithm == "reinforce" and self.space.num_decisions else None

    def tell_streamed(self, counts: F64, fitness: F64) -> bool:
        """REINFORCE's step of ``_tell`` from ``counts`` = sum_j (f_j - b) onehot(a_j) over the distinct
        topologies (:class:`esenas.feedback.StreamedScore`) and their mean ``fitness`` f_j: with
        adv_j = (f_j - b) / s, sum_j adv_j (onehot(a_j) - p) = (counts - (sum_j f_j - n b) p) / s.
        False, and nothing changed, when the iteration's baseline is not the b the counts were
        summed with (it was out of range): then the caller tells the topologies instead."""
        b, n, lr = float(self.baseline or 0.0), fitness.size, self.spec.learning_rate
        if self.baseline is None or self.bounded_baseline(fitness) != b:
            return False
        p = self.probs()
        score = (counts - (float(fitness.sum()) - n * b) * p) / (float(fitness.std()) or 1.0)
        self.logits += lr * (score / n + self._entropy_grad(p))
        self.logits -= self.logits.max(axis=1, keepdims=True)
        self.baseline = self.spec.baseline_decay * b + (1 - self.spec.baseline_decay) * float(fitness.mean())
        self._alias = self._probs_cache = None
        return True

    def _entropy_grad(self, p: F64) -> F64:
        if self.spec.entropy_weight == 0:
            return np.zeros_like(p)
        logp = np.log(np.where(p > 0, p, 1.0))
        h = -(p * logp).sum(axis=1, keepdims=True)
        return np.asarray(-self.spec.entropy_weight * p * (logp + h), np.float64)

    def _state(self) -> dict[str, Any]:
        return {"logits": self.logits.copy(), "baseline": self.baseline}

    def _load(self, d: dict[str, Any]) -> None:
        self.set_logits(d["logits"])
        self.baseline = None if d["baseline"] is None else float(d["baseline"])
