"""Policy-gradient controller: independent softmax logits per decision (ENAS, Pham et al. 2018).

ES-ENAS (arXiv 2101.07415, section 3.1) trains the controller on the rewards of the ES
rollouts. ``reinforce``: Williams 1992. ``ppo``: the clipped surrogate of Schulman et al. 2017.

A topology is ~1,000 independent decisions, so two details decide whether it learns at all:

* Advantages are the batch's rewards minus the batch mean, divided by the batch std: a
  lagging moving-average baseline divided by a small batch std gives unbounded advantages
  (rewards of thousands against a spread of a few), which throw the logits around at random.
  The moving average is only the fallback for a batch with no spread (one topology).
* PPO's ratio and clip are per decision. The joint ratio of ~1,000 decisions leaves [1-e, 1+e]
  after any useful first step, so every later epoch was clipped to nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from esenas.controllers.base import F64, Controller
from esenas.topology import Topology


class PolicyGradient(Controller):
    """Per-decision categorical distributions, trained by REINFORCE or PPO-clip."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        d, c = self.space.num_decisions, max(self.space.max_choices, 1)
        self.logits = np.zeros((d, c))
        self.valid = np.arange(c)[None, :] < self.space.choices[:, None]
        self.baseline: float | None = None
        self.var: float | None = None  # moving mean of (fitness - baseline)^2

    def probs(self) -> F64:
        z = np.where(self.valid, self.logits, -np.inf)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True), np.float64)

    def ask(self, n: int, rng: np.random.Generator | None = None) -> list[Topology]:
        g = rng or self.rng
        cdf = np.cumsum(self.probs(), axis=1)
        u = g.random((n, cdf.shape[0], 1))
        picks = np.minimum((u > cdf[None, :, :]).sum(axis=2), self.space.choices[None, :] - 1)
        return [Topology(self.space.kind, row) for row in picks]

    def mode(self) -> Topology:
        """The most likely topology."""
        return Topology(self.space.kind, np.argmax(np.where(self.valid, self.logits, -np.inf), axis=1))

    def entropy(self) -> float:
        """Mean entropy per decision in nats (ln C for a uniform controller)."""
        p = self.probs()
        return float(-(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1).mean()) if p.size else 0.0

    def advantages(self, fitness: F64) -> F64:
        """Standardised advantages, |A| bounded whatever the reward scale or its drift."""
        mean, std = float(fitness.mean()), float(fitness.std())
        decay = self.spec.baseline_decay
        if self.baseline is None or self.var is None:
            self.baseline, self.var = mean, std**2
        self.var = decay * self.var + (1 - decay) * float(np.mean((fitness - self.baseline) ** 2))
        if fitness.size >= 2 and std > 1e-12 * max(1.0, abs(mean)):
            adv = (fitness - mean) / std
        elif self.var > 0:
            # one topology (or no spread): the moving average is all there is to compare with;
            # the variance includes this batch's deviation, so |A| <= 1/sqrt(1 - decay)
            adv = (fitness - self.baseline) / np.sqrt(self.var)
        else:
            adv = np.zeros_like(fitness)
        self.baseline = decay * self.baseline + (1 - decay) * mean
        return np.asarray(adv, np.float64)

    def _score_grad(self, actions: np.ndarray, weights: F64, p: F64) -> F64:
        """sum_j,d w_jd * d log pi_d(a_jd) / d logits_d  =  sum_j w_jd (onehot(a_jd) - p_d).

        ``weights`` is (n,) for a weight per topology or (n, d) for one per decision.
        """
        d, c = p.shape
        w = np.broadcast_to(weights[:, None] if weights.ndim == 1 else weights, actions.shape)
        flat = (np.arange(d)[None, :] * c + actions).reshape(-1)
        counts = np.bincount(flat, weights=w.reshape(-1), minlength=d * c).reshape(d, c)
        return np.asarray(counts - w.sum(axis=0)[:, None] * p, np.float64)

    def _tell(self, topologies: list[Topology], fitness: F64) -> None:
        if not topologies or self.space.num_decisions == 0:
            return
        actions = np.stack([t.decisions for t in topologies])
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

    def _entropy_grad(self, p: F64) -> F64:
        if self.spec.entropy_weight == 0:
            return np.zeros_like(p)
        logp = np.log(np.where(p > 0, p, 1.0))
        h = -(p * logp).sum(axis=1, keepdims=True)
        return np.asarray(-self.spec.entropy_weight * p * (logp + h), np.float64)

    def _state(self) -> dict[str, Any]:
        return {"logits": self.logits.copy(), "baseline": self.baseline, "var": self.var}

    def _load(self, d: dict[str, Any]) -> None:
        self.logits = np.array(d["logits"], np.float64)
        self.baseline = None if d["baseline"] is None else float(d["baseline"])
        self.var = None if d.get("var") is None else float(d["var"])
