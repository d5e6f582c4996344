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
import numpy.typing as npt

from esenas.controllers.base import F64, Controller
from esenas.topology import Topology, decision_rows

#: Most elements per chunk of rows in ``_score_grad``: small enough that its temporaries (the
#: flat index and the broadcast weights, 16 bytes an element) stay in cache and are reused, not
#: fresh pages (measured: 40,000 chromatic H41 topologies in 0.11 s of CPU at 2^16, 0.15 s at
#: 2^20, 0.8-1.1 s at 2^24, most of it page faults).
_CHUNK_ELEMENTS: Final = 1 << 16
#: Decisions sampled per chunk in ``ask``: small enough that the temporaries stay in cache
#: (measured: 80,000 chromatic H41 topologies in 0.95 s at 2^18, 1.6 s at 2^20, 3 s at 2^24).
_SAMPLE_CHUNK_ELEMENTS: Final = 1 << 18


def alias_tables(p: F64, choices: np.ndarray) -> tuple[F64, np.ndarray]:
    """Walker's alias tables (Vose 1991) for each row of ``p`` over its first ``choices[i]``
    columns: column j is kept with probability prob[i, j], else replaced by alias[i, j]."""
    d, c = p.shape
    prob = np.ones((d, c))
    alias = np.tile(np.arange(c), (d, 1))
    for i in range(d):
        k = int(choices[i])
        scaled = p[i, :k] * k
        small = [j for j in range(k) if scaled[j] < 1.0]
        large = [j for j in range(k) if scaled[j] >= 1.0]
        while small and large:
            s, big = small.pop(), large[-1]
            prob[i, s], alias[i, s] = scaled[s], big
            scaled[big] -= 1.0 - scaled[s]
            if scaled[big] < 1.0:
                small.append(large.pop())
        for j in small + large:  # leftovers are 1 up to rounding
            prob[i, j] = 1.0
    return prob, alias


class PolicyGradient(Controller):
    """Per-decision categorical distributions, trained by REINFORCE or PPO-clip."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        d, c = self.space.num_decisions, max(self.space.max_choices, 1)
        self.logits = np.zeros((d, c))
        self.valid = np.arange(c)[None, :] < self.space.choices[:, None]
        self.baseline: float | None = None
        self._alias: tuple[F64, np.ndarray] | None = None
        self._probs_cache: F64 | None = None

    def probs(self) -> F64:
        z = np.where(self.valid, self.logits, -np.inf)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True), np.float64)

    def ask(self, n: int, rng: np.random.Generator | None = None) -> list[Topology]:
        """n topologies, each decision drawn from its softmax by Walker's alias method: one
        uniform and two lookups per decision, so 100,000 chromatic H41 topologies cost
        O(n * decisions), not O(n * decisions * colours) comparisons."""
        g = rng or self.rng
        if self._alias is None:  # built once per controller update (a Python loop over decisions)
            self._alias = alias_tables(self.probs(), self.space.choices)
        prob, alias = self._alias
        d, c = prob.shape
        m = self.space.choices.astype(np.float32)[None, :]
        top = (self.space.choices - 1).astype(np.float32)[None, :]
        base = (np.arange(d, dtype=np.int32 if d * c < 2**31 else np.intp) * c)[None, :]
        dtype = np.uint8 if c <= 256 else np.int64
        flat_prob, flat_alias = prob.ravel().astype(np.float32), alias.ravel().astype(dtype)
        out: list[Topology] = []
        chunk = max(1, _SAMPLE_CHUNK_ELEMENTS // max(1, d))
        for start in range(0, n, chunk):
            # u * m splits into a column (its integer part) and a fresh uniform (its fraction);
            # float32 keeps ~20 bits of that fraction for up to 17 choices, plenty for sampling.
            # In place and without np.where (30 times slower than the arithmetic on uint8).
            um = g.random((min(chunk, n - start), d), dtype=np.float32)
            um *= m
            col = np.minimum(np.floor(um), top)  # u * m can round up to m
            um -= col  # exact: the fraction
            flat = col.astype(base.dtype)
            flat += base
            alias_pick: npt.NDArray[np.integer[Any]] = np.take(flat_alias, flat)
            picks: npt.NDArray[np.integer[Any]] = col.astype(dtype)
            picks -= alias_pick  # wraps in uint8, and wraps back below
            picks *= (um < np.take(flat_prob, flat)).view(np.uint8)
            picks += alias_pick
            if self.space.distinct:  # k distinct edges: a repeated edge is redrawn among unused ones
                self.space.redraw_repeats(picks, self._probs(), g)
            if picks.dtype == np.uint8:  # rows of a read-only block are what the constructor stores
                picks.setflags(write=False)
                out.extend(Topology.sampled(self.space.kind, row) for row in picks)
            else:
                out.extend(Topology(self.space.kind, row) for row in picks)
        return out

    def _probs(self) -> F64:
        if self._probs_cache is None:
            self._probs_cache = self.probs()
        return self._probs_cache

    def entropy(self) -> float | None:
        """Mean entropy per decision in nats (ln C for a uniform controller)."""
        p = self.probs()
        return float(-(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1).mean()) if p.size else 0.0

    def advantages(self, fitness: F64) -> F64:
        """(fitness - moving-average baseline) / batch std, then the baseline moves on.

        The baseline lags rising rewards, so advantages then carry a positive offset that
        imitates the controller's own samples and lowers its entropy. On chromatic H41 that
        exploitation helped (bench/results/learning-history.md): the batch mean as baseline, tried in
        its place, learned less on both seeds measured.
        """
        mean = float(fitness.mean())
        if self.baseline is None:
            self.baseline = mean
        adv = (fitness - self.baseline) / (float(fitness.std()) or 1.0)
        self.baseline = self.spec.baseline_decay * self.baseline + (1 - self.spec.baseline_decay) * mean
        return np.asarray(adv, np.float64)

    def _score_grad(self, actions: np.ndarray, weights: F64, p: F64) -> F64:
        """sum_j,d w_jd * d log pi_d(a_jd) / d logits_d  =  sum_j w_jd (onehot(a_jd) - p_d).

        ``weights`` is (n,) for a weight per topology or (n, d) for one per decision.
        """
        d, c = p.shape
        counts = np.zeros(d * c)
        total: F64 | float = 0.0
        # In chunks of rows: the flat (n*d) index and weights of 100,000 topologies are 1.5 GB.
        step = max(1, _CHUNK_ELEMENTS // max(1, d))
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

    def _entropy_grad(self, p: F64) -> F64:
        if self.spec.entropy_weight == 0:
            return np.zeros_like(p)
        logp = np.log(np.where(p > 0, p, 1.0))
        h = -(p * logp).sum(axis=1, keepdims=True)
        return np.asarray(-self.spec.entropy_weight * p * (logp + h), np.float64)

    def _state(self) -> dict[str, Any]:
        return {"logits": self.logits.copy(), "baseline": self.baseline}

    def _load(self, d: dict[str, Any]) -> None:
        self.logits = np.array(d["logits"], np.float64)
        self._alias = self._probs_cache = None
        self.baseline = None if d["baseline"] is None else float(d["baseline"])
