"""esenas.alias: a settled controller's topologies drawn mode-first, from the same distribution as
Walker's dense draw, and the same on every holder of the sampler."""

from __future__ import annotations

import numpy as np
import pytest
from esenas.alias import MODE_FIRST_SHARE, build_tables, draw_rows
from esenas.sampling import BlockSampler, softmax_probs
from esenas.topology import SearchSpace

D, C = 200, 17


def concentrated(level: float, seed: int = 0, choices: np.ndarray | None = None) -> tuple[SearchSpace, np.ndarray, np.ndarray]:
    """A space, logits with each decision's mode at ``level`` nats above its other choices, and the modes."""
    ch = np.full(D, C, np.int64) if choices is None else choices
    rng = np.random.default_rng(seed)
    mode = rng.integers(0, ch)
    logits = rng.normal(scale=0.5, size=(D, C))  # the other choices unequal, so their own draw matters
    logits[np.arange(D), mode] += level
    return SearchSpace("partition", ch), logits, mode


def test_the_way_follows_the_expected_share_of_decisions_off_the_mode() -> None:
    for level, mode_first in ((6.0, True), (0.0, False)):
        space, logits, mode = concentrated(level)
        p = softmax_probs(logits, space.choices)
        t = build_tables(p, space.choices)
        assert (t.mode is not None) is mode_first
        assert (float(1 - p.max(axis=1).mean()) <= MODE_FIRST_SHARE) is mode_first
        if mode_first:
            assert t.mode is not None and t.mode.tolist() == mode.tolist()


@pytest.mark.parametrize("level", [4.5, 6.0])
def test_mode_first_draws_each_decisions_softmax(level: float) -> None:
    space, logits, _ = concentrated(level, seed=1)
    p = softmax_probs(logits, space.choices)
    t = build_tables(p, space.choices)
    assert t.mode is not None
    n = 40_000
    rows = draw_rows(space, t, np.random.default_rng(3), n).astype(np.int64)
    freq = np.stack([np.bincount(rows[:, j], minlength=C) for j in range(D)]) / n
    # every choice of every decision within 5 standard errors of its probability
    se = np.sqrt(p * (1 - p) / n) + 1e-12
    assert np.all(np.abs(freq - p) <= 5 * se + 1e-4), np.abs(freq - p).max()
    # and the choices off the mode in their own proportions (pooled over decisions)
    off = p.copy()
    off[np.arange(D), t.mode] = 0
    got_off = freq.copy()
    got_off[np.arange(D), t.mode] = 0
    assert abs(got_off.sum() - off.sum()) <= 5 * np.sqrt(off.sum() * n) / n + 1e-3
    corr = np.corrcoef(got_off.ravel(), off.ravel())[0, 1]
    assert corr > 0.9


def test_a_decision_that_cannot_leave_its_mode_never_does() -> None:
    choices = np.full(D, C, np.int64)
    choices[:3] = 1  # nothing to choose
    space, logits, _ = concentrated(7.0, seed=2, choices=choices)
    logits[5] = -800.0
    logits[5, 4] = 0.0  # every other choice's probability underflows to exactly 0
    p = softmax_probs(logits, space.choices)
    assert p[5, 4] == 1.0
    t = build_tables(p, space.choices)
    assert t.mode is not None
    rows = draw_rows(space, t, np.random.default_rng(0), 20_000)
    assert np.all(rows[:, :3] == 0) and np.all(rows[:, 5] == 4)
    assert np.all(rows < space.choices[None, :])


def test_a_relay_redraws_mode_first_blocks_bit_for_bit() -> None:
    space, logits, _ = concentrated(6.0, seed=4)
    seeds = np.random.default_rng(5).integers(1, 2**63, size=4, dtype=np.uint64)
    sampler = BlockSampler(space, logits, seeds, 4 * 64 - 3)
    assert sampler.tables().mode is not None
    wire = BlockSampler.from_bytes(sampler.to_bytes())
    assert wire.topologies() == sampler.topologies()
    assert wire.at([200, 7]) == [sampler.topologies()[200], sampler.topologies()[7]]


def test_distinct_edge_spaces_stay_distinct_mode_first() -> None:
    # 10 edges out of 300 in one group, the controller settled on 10 different edges
    choices = np.full(10, 300, np.int64)
    space = SearchSpace("edges", choices, distinct=True, groups=np.zeros(10, np.int64))
    logits = np.zeros((10, 300))
    logits[np.arange(10), np.arange(10) * 7] = 9.0
    p = softmax_probs(logits, choices)
    t = build_tables(p, choices)
    assert t.mode is not None
    rows = draw_rows(space, t, np.random.default_rng(6), 2_000).astype(np.int64)
    assert all(len(set(r)) == 10 for r in rows.tolist())
    assert (rows == (np.arange(10) * 7)[None, :]).mean() > 0.9
