"""The finite-state guarantee: no ES or controller update is kept unless every number it
leaves behind is finite.

Bounds on results (:mod:`esenas_aggregator.bounds`) stop the known poisons at the door; this
is the last line behind them. An update that would leave a NaN or an infinity in the
parameters, the optimiser, the observation normaliser or the controller is refused: the
aggregator restores the state of the last completed iteration and runs the iteration again
(the same seeds, fresh results). A deterministic blow-up would repeat, so after
``MAX_REFUSALS`` refusals in a row the job fails with the reason instead of looping.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import numpy as np

#: The parts of ``ESENAS.state_dict()`` an update writes and later iterations compute with.
GUARDED: Final = ("params", "optimizer", "obs_stats", "controller")
MAX_REFUSALS: Final = 3


def nonfinite_parts(state: dict[str, Any]) -> list[str]:
    """The guarded parts of an algorithm state holding a non-finite number (empty: all finite)."""
    return [part for part in GUARDED if part in state and not all(_finite(x) for x in _numbers(state[part]))]


def _finite(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return not np.issubdtype(x.dtype, np.inexact) or bool(np.isfinite(x).all())
    return bool(np.isfinite(x))


def _numbers(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for v in node.values():
            yield from _numbers(v)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _numbers(v)
    elif isinstance(node, np.ndarray | float | np.floating):
        yield node
