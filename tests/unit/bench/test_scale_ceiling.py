"""bench/scale_ceiling.py's scheduling model on cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from bench.scale_ceiling import ceiling, pair_lengths


def test_equal_items_fill_every_worker() -> None:
    assert ceiling(np.ones(8), workers=2, batch=1, fraction=1.0) == 1.0
    assert ceiling(np.ones(8), workers=2, batch=4, fraction=0.9) == 1.0  # all in at the same moment


def test_one_long_item_idles_the_others_until_the_fraction_leaves_it_out() -> None:
    lengths = np.array([5.0, 1.0, 1.0, 1.0])  # worker 0 takes the 5, worker 1 the three 1s
    assert ceiling(lengths, workers=2, batch=1, fraction=1.0) == pytest.approx(8 / 10)
    # closing at 3 of 4 pairs: at t=3, the three short ones are in
    assert ceiling(lengths, workers=2, batch=1, fraction=0.75) == pytest.approx(3 / 6)
    # one lease of two per worker: [5, 1] and [1, 1], makespan 6
    assert ceiling(lengths, workers=2, batch=2, fraction=1.0) == pytest.approx(8 / 12)


def test_pairs_are_two_episodes_of_the_benchs_lengths() -> None:
    fixed = pair_lengths("fixed", 5, np.random.default_rng(0))
    assert fixed.tolist() == [2000.0] * 5
    heavy = pair_lengths("heavy-tailed", 2000, np.random.default_rng(0))
    assert heavy.min() >= 40 and heavy.max() <= 2000 and np.median(heavy) < 400


def test_a_batch_reports_when_its_last_pair_ends() -> None:
    lengths = np.array([1.0, 5.0, 1.0, 1.0])  # leases [1, 5] and [1, 1]: in at t=6 and t=2
    # closing at half the pairs: at t=2 only the second lease's two pairs are in
    assert ceiling(lengths, workers=2, batch=2, fraction=0.5) == pytest.approx(2 / 4)
