"""The controller interface every NAS controller shares: ask(n) -> topologies, tell(rewards).

Proposals and feedback are batched (ES-ENAS, arXiv 2101.07415, Algorithm 1): one topology
per perturbation pair, and the fitness of every evaluation goes back. Fitness is maximised.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from esenas.best import means_by_index
from esenas.sampling import BlockSampler
from esenas.spec import ControllerSpec
from esenas.topology import SearchSpace, Topology, group_by_topology

F64 = npt.NDArray[np.float64]


class Controller(ABC):
    """Ask/tell over explicit state; ``rng`` in ask lets the caller derive it per iteration."""

    def __init__(self, space: SearchSpace, spec: ControllerSpec, seed: int) -> None:
        self.space = space
        self.spec = spec
        self.rng = np.random.Generator(np.random.PCG64(seed))

    @abstractmethod
    def ask(self, n: int, rng: np.random.Generator | None = None) -> list[Topology]:
        """n topologies to evaluate."""

    def sampler(self, n: int, rng: np.random.Generator | None = None) -> BlockSampler | None:
        """The n topologies ``ask`` would give, as a :class:`BlockSampler` that rebuilds any one
        of them from a few seeds; None for a controller that does not sample in blocks."""
        return None

    def tell(self, topologies: Sequence[Topology], rewards: npt.ArrayLike) -> None:
        """Feedback: the fitness of every evaluation (topologies may repeat). Which topology is
        best so far is not the controller's business: see :class:`esenas.best.Incumbent`."""
        if len(topologies) != np.size(rewards):
            raise ValueError(f"tell: {len(topologies)} topologies but {np.size(rewards)} rewards")
        uniq, index = group_by_topology(topologies)
        self.tell_indexed(uniq, index, rewards)

    def tell_indexed(self, topologies: Sequence[Topology], index: npt.NDArray[np.int64], rewards: npt.ArrayLike) -> None:
        """:meth:`tell` for evaluations given by position in a list of unique topologies: evaluation
        i is of ``topologies[index[i]]``, and each topology's fitness is the mean of its evaluations.
        The same update as ``tell`` on the expanded list when ``index`` first names each topology
        in ascending order (as a plan's items do), without grouping 160,000 evaluations by their
        decisions again each iteration."""
        r = np.asarray(rewards, np.float64)
        if index.size != r.size:
            raise ValueError(f"tell: {index.size} evaluations but {r.size} rewards")
        seen, means = means_by_index(index, r, len(topologies))
        self._tell([topologies[i] for i in seen.tolist()], np.asarray(means, np.float64))

    def streamed_baseline(self) -> float | None:
        """The baseline b when this iteration's feedback can stream as sum_j (f_j - b) onehot(a_j)
        (:mod:`esenas.feedback`, then :meth:`tell_streamed`); None when it cannot."""
        return None

    def tell_streamed(self, counts: F64, fitness: F64) -> bool:
        """The update from streamed ``counts``; False when they cannot be used (then call :meth:`tell_indexed`)."""
        raise NotImplementedError(f"{type(self).__name__} does not take streamed feedback")

    @abstractmethod
    def _tell(self, topologies: list[Topology], fitness: F64) -> None: ...

    def entropy(self) -> float | None:
        """Mean entropy per decision of the distribution topologies are sampled from, in nats;
        None for a controller without one (evolution, a fixed topology). Falling towards 0 means
        the controller has settled on a topology."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, **self._state()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.rng.bit_generator.state = d["rng"]
        self._load(d)

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, d: dict[str, Any]) -> None:
        return None


class FixedController(Controller):
    """For fixed topologies (dense, Toeplitz, circulant): always the one topology."""

    def __init__(self, space: SearchSpace, spec: ControllerSpec, seed: int, topology: Topology) -> None:
        super().__init__(space, spec, seed)
        self.topology = topology

    def ask(self, n: int, rng: np.random.Generator | None = None) -> list[Topology]:
        return [self.topology] * n

    def _tell(self, topologies: list[Topology], fitness: F64) -> None:
        return None


class RandomSearch(Controller):
    """Uniform random topologies; learns nothing. The baseline the others must beat."""

    def ask(self, n: int, rng: np.random.Generator | None = None) -> list[Topology]:
        g = rng or self.rng
        return [self.space.sample(g) for _ in range(n)]

    def entropy(self) -> float | None:
        """Uniform over each decision's choices: the mean of ln(choices), where the
        policy-gradient controller starts."""
        c = self.space.choices
        return float(np.log(c[c > 0]).mean()) if c.size else None

    def _tell(self, topologies: list[Topology], fitness: F64) -> None:
        return None
