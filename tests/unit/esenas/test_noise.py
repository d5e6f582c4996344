"""esenas.noise: many perturbations at once are, bit for bit, NumPy's Generator(PCG64(seed)) rows."""

from __future__ import annotations

import numpy as np
import pytest
from esenas import es, noise

#: Edge seeds: the smallest, one 32-bit word, the word boundary, the largest the plans use, and all ones.
EDGES = [0, 1, 2, 2**32 - 1, 2**32, 2**32 + 1, 2**63 - 1, 2**63, 2**64 - 1]


def test_seed_words_are_numpy_s_seed_sequence_state() -> None:
    seeds = np.concatenate([np.array(EDGES, np.uint64), np.random.default_rng(7).integers(0, 2**64 - 1, 3000, dtype=np.uint64)])
    words = noise.seed_words(seeds)
    want = np.stack([np.random.SeedSequence(int(s)).generate_state(4, np.uint64) for s in seeds.tolist()])
    assert words.dtype == np.uint64 and words.shape == (seeds.size, 4)
    assert np.array_equal(words, want)


@pytest.mark.parametrize("dim", [1, 7, 140, 1000])
def test_rows_are_numpy_s_perturbations_bit_for_bit(dim: int) -> None:
    seeds = [*EDGES, *np.random.default_rng(dim).integers(1, 2**63, 500, dtype=np.uint64).tolist()]
    rows = es.perturbations(np.array(seeds, np.uint64), dim)
    want = np.stack([np.random.Generator(np.random.PCG64(int(s))).standard_normal(dim) for s in seeds])
    assert rows.shape == (len(seeds), dim)
    assert np.array_equal(rows, want)  # exact: the workers draw the same eps from the same seed
    assert np.array_equal(rows[5], es.perturbation(seeds[5], dim))


def test_no_seeds_give_no_rows() -> None:
    assert es.perturbations(np.zeros(0, np.uint64), 12).shape == (0, 12)


def test_vectorised_pcg64_states_are_the_integer_ones() -> None:
    seeds = np.concatenate([np.array(EDGES, np.uint64), np.random.default_rng(3).integers(0, 2**64 - 1, 2000, dtype=np.uint64)])
    words = noise.seed_words(seeds)
    got = noise.pcg64_states(words).tolist()
    for row, w in zip(got, words.tolist(), strict=True):
        state, inc = noise.pcg64_state((w[0], w[1], w[2], w[3]))
        assert row == [state & (2**64 - 1), state >> 64, inc & (2**64 - 1), inc >> 64]


def test_rows_without_the_direct_state_writes_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the build lays PCG64's state out otherwise, the public setter gives the same rows."""
    seeds = np.array([*EDGES, 12345], np.uint64)
    fast = es.perturbations(seeds, 33)
    monkeypatch.setattr(noise, "_state_view", lambda bit_gen: None)
    assert np.array_equal(es.perturbations(seeds, 33), fast)
    assert np.array_equal(fast[-1], np.random.Generator(np.random.PCG64(12345)).standard_normal(33))


def test_the_direct_state_view_is_found_on_this_build() -> None:
    assert noise._state_view(np.random.PCG64(0)) is not None  # else every plan pays the slow setter
