"""Regularized evolution (Real et al. 2019, "Aging evolution", Algorithm 1), batched.

An aging population of at most P members; each child comes from the best of a tournament
of about sqrt(P) members sampled at random, mutated; the oldest member dies. Aging suits
ES-ENAS: the shared weights keep moving, so old fitnesses go stale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from esenas.controllers.base import F64, Controller
from esenas.topology import Topology


class RegularizedEvolution(Controller):
    """Aging population with tournament selection and per-decision mutation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.population: list[tuple[Topology, float]] = []
        p = self.spec.population_size
        self.tournament = self.spec.tournament_size or max(2, round(p**0.5))

    def ask(self, n: int, rng: np.random.Generator | None = None) -> list[Topology]:
        g = rng or self.rng
        out: list[Topology] = []
        for _ in range(n):
            if len(self.population) < self.spec.population_size:
                out.append(self.space.sample(g))
                continue
            idx = g.choice(len(self.population), size=min(self.tournament, len(self.population)), replace=False)
            parent = max((self.population[int(i)] for i in idx), key=lambda m: m[1])[0]
            out.append(self.space.mutate(parent, self.spec.mutation_rate, g))
        return out

    def _tell(self, topologies: list[Topology], fitness: F64) -> None:
        self.population.extend(zip(topologies, fitness.tolist(), strict=True))
        excess = len(self.population) - self.spec.population_size
        if excess > 0:
            del self.population[:excess]  # the oldest die (aging), not the worst

    def _state(self) -> dict[str, Any]:
        return {"population": [(t.to_json(), f) for t, f in self.population]}

    def _load(self, d: dict[str, Any]) -> None:
        self.population = [(Topology.from_json(t), float(f)) for t, f in d["population"]]
