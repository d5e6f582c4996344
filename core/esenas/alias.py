"""Walker's alias method for a controller's per-decision categoricals, drawn two ways.

A topology is one draw per decision (chromatic H41: 943), so a plan of 8,000 pairs is 7.5M draws,
and relays and the aggregator draw every one. :func:`draw_rows` does it with one uniform and two
table lookups per decision (~9 ns each). Once the controller has settled, nearly every decision
takes its likeliest choice, and most of that work only confirms it: **mode-first** tables (built
when a topology is expected to differ from the mode in at most :data:`MODE_FIRST_SHARE` of its
decisions) compare each uniform with the mode's probability, and draw the rare rest from the
decision's other choices (their own alias tables, renormalised): the same distribution, at about
a third of the cost (``bench/population.py --settled``:
``topology_prefetch_during_iteration``).

Which way a sampler draws is a function of its probabilities alone, so every holder of the same
sampler (the aggregator, each relay) draws the same topologies bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from esenas.topology import SearchSpace

F64 = npt.NDArray[np.float64]

#: Draw mode-first when the expected share of decisions that differ from their mode is at most this.
MODE_FIRST_SHARE: Final = 0.2


def alias_tables(p: F64, choices: npt.NDArray[np.int64]) -> tuple[F64, np.ndarray]:
    """Walker's alias tables (Vose 1991) for each row of ``p`` over its first ``choices[i]``
    columns: column j is kept with probability prob[i, j], else replaced by alias[i, j].

    Every row runs Vose's loop (pop a small column, alias it to the top large one, move that one
    to the small stack once it falls below 1), all rows one step at a time: the same tables,
    bit for bit, as a loop over rows (relays redraw the aggregator's samples from them), at ~1
    ms instead of ~10 for chromatic H41's 943 decisions."""
    d, c = p.shape
    prob = np.ones((d, c))
    alias = np.tile(np.arange(c), (d, 1))
    valid = np.arange(c)[None, :] < choices[:, None]
    scaled = np.where(valid, p * choices[:, None], 0.0)
    rows = np.arange(d)
    # each stack holds its columns in ascending order, so popping from the end is Vose's order
    is_small, is_large = valid & (scaled < 1.0), valid & (scaled >= 1.0)
    small_len, large_len = is_small.sum(axis=1), is_large.sum(axis=1)
    small = np.argsort(~is_small, axis=1, kind="stable")  # its columns first, ascending
    large = np.argsort(~is_large, axis=1, kind="stable")
    while True:
        r = rows[(small_len > 0) & (large_len > 0)]
        if not r.size:
            return prob, alias
        small_len[r] -= 1
        s_col, big = small[r, small_len[r]], large[r, large_len[r] - 1]
        prob[r, s_col], alias[r, s_col] = scaled[r, s_col], big
        scaled[r, big] -= 1.0 - scaled[r, s_col]
        moved = r[scaled[r, big] < 1.0]
        large_len[moved] -= 1
        small[moved, small_len[moved]] = large[moved, large_len[moved]]
        small_len[moved] += 1


def flat_tables(prob: F64, alias: np.ndarray) -> tuple[npt.NDArray[np.float32], np.ndarray]:
    """Alias tables as :func:`draw_rows` reads them: flat, float32 probabilities and the aliases
    in uint8 (int64 past 256 columns)."""
    return prob.ravel().astype(np.float32), alias.ravel().astype(np.uint8 if prob.shape[1] <= 256 else np.int64)


@dataclass(frozen=True)
class Tables:
    """What :func:`draw_rows` reads, built once per controller update (:func:`build_tables`).

    ``prob``/``alias`` are flat alias tables: of each decision's whole distribution, or, when
    ``mode`` is set (mode-first), of its choices other than ``mode``, renormalised. ``keep`` is
    then each decision's probability of its mode (float32, as the uniforms are)."""

    prob: npt.NDArray[np.float32]
    alias: np.ndarray
    p: F64
    mode: np.ndarray | None = None
    keep: npt.NDArray[np.float32] | None = None


def build_tables(p: F64, choices: npt.NDArray[np.int64]) -> Tables:
    """The tables for probabilities ``p`` (rows over their first ``choices[i]`` columns),
    mode-first when the controller is concentrated enough for it to pay (see the module)."""
    d = p.shape[0]
    if d == 0 or float(1.0 - p.max(axis=1).mean()) > MODE_FIRST_SHARE:
        return Tables(*flat_tables(*alias_tables(p, choices)), p)
    mode = p.argmax(axis=1)
    rows = np.arange(d)
    rest = p.copy()
    rest[rows, mode] = 0.0
    mass = rest.sum(axis=1)
    valid = np.arange(p.shape[1])[None, :] < choices[:, None]
    valid[rows, mode] = False
    # A decision that never leaves its mode still needs a valid row: uniform over the others
    # (never drawn: its keep is 1), or the mode itself when it is the only choice.
    stuck = mass <= 0.0
    rest[stuck] = valid[stuck]
    rest[stuck & (choices == 1), 0] = 1.0
    rest /= rest.sum(axis=1, keepdims=True)
    prob, alias = flat_tables(*alias_tables(rest, choices))
    keep = np.where(stuck, 1.0, p[rows, mode]).astype(np.float32)
    return Tables(prob, alias, p, mode.astype(alias.dtype), keep)


def draw_rows(space: SearchSpace, t: Tables, g: np.random.Generator, n: int) -> npt.NDArray[np.integer[Any]]:
    """n rows of decisions, each drawn from its softmax: one uniform and two lookups per
    decision (Walker), O(n * decisions), not O(n * decisions * colours); or mode-first, one
    uniform and a comparison per decision plus Walker's draw for the few that leave their mode."""
    d, c = t.p.shape
    m = space.choices.astype(np.float32)
    top = (space.choices - 1).astype(np.float32)
    base = np.arange(d, dtype=np.int32 if d * c < 2**31 else np.intp) * c
    u = g.random((n, d), dtype=np.float32)
    if t.mode is None:
        picks = _walker(u, m[None, :], top[None, :], base[None, :], t)
    else:
        assert t.keep is not None
        picks = np.tile(t.mode, (n, 1))
        leave = np.flatnonzero(u >= t.keep)
        if leave.size:
            cols = leave % d
            picks.flat[leave] = _walker(g.random(leave.size, dtype=np.float32), m[cols], top[cols], base[cols], t)
    if space.distinct:  # k distinct edges: a repeated edge is redrawn among unused ones
        space.redraw_repeats(picks, t.p, g)
    return picks


def _walker(
    um: npt.NDArray[np.float32], m: npt.NDArray[np.float32], top: npt.NDArray[np.float32], base: np.ndarray, t: Tables
) -> npt.NDArray[np.integer[Any]]:
    """Walker's pick for each uniform of ``um`` (overwritten) at its decision's ``m`` choices,
    ``top`` = m - 1 and flat table offset ``base``."""
    # u * m splits into a column (its integer part) and a fresh uniform (its fraction); float32
    # keeps ~20 bits of that fraction for up to 17 choices, plenty for sampling. In place and
    # without np.where (30 times slower than the arithmetic on uint8).
    um *= m
    col = np.minimum(np.floor(um), top)  # u * m can round up to m
    um -= col  # exact: the fraction
    flat = col.astype(base.dtype)
    flat += base
    alias_pick: npt.NDArray[np.integer[Any]] = np.take(t.alias, flat)
    picks: npt.NDArray[np.integer[Any]] = col.astype(t.alias.dtype)
    picks -= alias_pick  # wraps in uint8, and wraps back below
    picks *= (um < np.take(t.prob, flat)).view(np.uint8)
    picks += alias_pick
    return picks
