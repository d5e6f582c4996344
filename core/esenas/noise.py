"""Many perturbations at once, bit for bit those of ``np.random.Generator(np.random.PCG64(seed))``.

Building a PCG64 from an integer seed runs NumPy's SeedSequence one seed at a time, in Python-level
code under an ``errstate`` guard: about 14 us per seed before a single number is drawn, which made
rebuilding the perturbations of 80,000 pairs the aggregator's largest per-pair cost. Here the
SeedSequence hash (NEP 19: ``SeedSequence(seed).generate_state(4, uint64)``, whose output NumPy
keeps stable) runs vectorised over all seeds, PCG64's own seeding step (``pcg_setseq_128_srandom_r``)
in Python integers, and one reused generator draws each row from the state it would have had.
``tests/unit/esenas/test_noise.py`` checks the rows against NumPy's for thousands of seeds.
"""

from __future__ import annotations

import ctypes
from typing import Final

import numpy as np
import numpy.typing as npt

_INIT_A: Final = np.uint32(0x43B0D7E5)
_MULT_A: Final = np.uint32(0x931E8875)
_INIT_B: Final = 0x8B51F9DD
_MULT_B: Final = 0x58F38DED
_MIX_L: Final = np.uint32(0xCA01F9DD)
_MIX_R: Final = np.uint32(0x4973F715)
_SHIFT: Final = np.uint32(16)
_POOL: Final = 4
_M128: Final = (1 << 128) - 1
#: PCG64's 128-bit LCG multiplier (PCG_DEFAULT_MULTIPLIER_128).
_PCG_MULT: Final = (2549297995355413924 << 64) + 4865540595714422341


def seed_words(seeds: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """(n, 4) uint64: ``SeedSequence(seed).generate_state(4, np.uint64)`` for each 64-bit seed.

    A seed's entropy is its 32-bit words, low first; a seed below 2**32 has one word, and the pool
    then hashes 0 in the second word's place, exactly as a high word of 0 would be hashed, so every
    seed can be taken as two words.
    """
    s = np.asarray(seeds, dtype=np.uint64).reshape(-1)
    n = s.size
    h = np.full(n, _INIT_A, np.uint32)

    def hashmix(v: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
        nonlocal h
        v = v ^ h
        h = h * _MULT_A
        v = v * h
        return v ^ (v >> _SHIFT)

    def mix(x: npt.NDArray[np.uint32], y: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
        r = np.asarray(_MIX_L * x - _MIX_R * y, np.uint32)
        return r ^ (r >> _SHIFT)

    zero = np.zeros(n, np.uint32)
    entropy = [(s & np.uint64(0xFFFFFFFF)).astype(np.uint32), (s >> np.uint64(32)).astype(np.uint32)]
    pool = [hashmix(entropy[i] if i < len(entropy) else zero) for i in range(_POOL)]
    for src in range(_POOL):
        for dst in range(_POOL):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    out = np.empty((n, 2 * _POOL), np.uint32)
    hb = _INIT_B
    for i in range(2 * _POOL):
        v = pool[i % _POOL] ^ np.uint32(hb)
        hb = (hb * _MULT_B) & 0xFFFFFFFF
        v = v * np.uint32(hb)
        out[:, i] = v ^ (v >> _SHIFT)
    return np.ascontiguousarray(out).view("<u8").astype(np.uint64)


def pcg64_state(words: tuple[int, int, int, int]) -> tuple[int, int]:
    """PCG64's (state, inc) after seeding with SeedSequence words (``pcg64_set_seed``)."""
    s0, s1, i0, i1 = words
    inc = ((((i0 << 64) | i1) << 1) | 1) & _M128
    state = (inc + ((s0 << 64) | s1)) & _M128  # step from 0 (0 * mult + inc), then add the seed
    return (state * _PCG_MULT + inc) & _M128, inc


def _mul_hi(a: npt.NDArray[np.uint64], b: int) -> npt.NDArray[np.uint64]:
    """The high 64 bits of each a * b, from 32-bit halves."""
    lo32 = np.uint64(0xFFFFFFFF)
    a0, a1, b0, b1 = a & lo32, a >> np.uint64(32), np.uint64(b & 0xFFFFFFFF), np.uint64(b >> 32)
    p00, p01, p10 = a0 * b0, a0 * b1, a1 * b0
    mid = (p00 >> np.uint64(32)) + (p01 & lo32) + (p10 & lo32)
    return np.asarray(a1 * b1 + (p01 >> np.uint64(32)) + (p10 >> np.uint64(32)) + (mid >> np.uint64(32)), np.uint64)


def pcg64_states(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """:func:`pcg64_state` of every row of ``words`` (n, 4), vectorised: (n, 4) uint64 rows of
    state low, state high, inc low, inc high (the little-endian layout of PCG64's 128-bit state)."""
    one, s64 = np.uint64(1), np.uint64(63)
    s0, s1, i0, i1 = (words[:, k] for k in range(4))
    inc_lo, inc_hi = (i1 << one) | one, (i0 << one) | (i1 >> s64)
    lo = inc_lo + s1
    hi = inc_hi + s0 + (lo < inc_lo).astype(np.uint64)
    m_lo, m_hi = _PCG_MULT & 0xFFFFFFFFFFFFFFFF, _PCG_MULT >> 64
    prod_lo = lo * np.uint64(m_lo)
    prod_hi = _mul_hi(lo, m_lo) + lo * np.uint64(m_hi) + hi * np.uint64(m_lo)
    out = np.empty((words.shape[0], 4), np.uint64)
    out[:, 0] = prod_lo + inc_lo
    out[:, 1] = prod_hi + inc_hi + (out[:, 0] < prod_lo).astype(np.uint64)
    out[:, 2], out[:, 3] = inc_lo, inc_hi
    return out


def _state_view(bit_gen: np.random.PCG64) -> npt.NDArray[np.uint64] | None:
    """The generator's own 128-bit state and increment as 4 writable uint64 (see
    :func:`pcg64_states`), or None where the build lays them out otherwise: checked by writing
    a known state through the public setter and reading it back."""
    try:
        pointer = ctypes.c_void_p.from_address(bit_gen.ctypes.state_address).value
        if not pointer:
            return None
        view = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(pointer))
    except (AttributeError, TypeError, ValueError):
        return None
    probe = (0x0123456789ABCDEF << 64) | 0x0FEDCBA987654321, (0x1111222233334444 << 64) | 0x5555666677778889
    bit_gen.state = {"bit_generator": "PCG64", "state": {"state": probe[0], "inc": probe[1]}, "has_uint32": 0, "uinteger": 0}
    expect = [probe[0] & 0xFFFFFFFFFFFFFFFF, probe[0] >> 64, probe[1] & 0xFFFFFFFFFFFFFFFF, probe[1] >> 64]
    return view if view.tolist() == expect else None


def standard_normal_rows(seeds: npt.ArrayLike, dim: int) -> npt.NDArray[np.float64]:
    """Row i = ``np.random.Generator(np.random.PCG64(seeds[i])).standard_normal(dim)``.

    Each seed's state goes straight into the generator's memory (about 0.3 us) rather than
    through the ``state`` setter's dict (about 2 us), where the layout is the one checked."""
    words = seed_words(seeds)
    out = np.empty((words.shape[0], dim))
    bit_gen = np.random.PCG64(0)
    gen = np.random.Generator(bit_gen)
    view = _state_view(bit_gen)
    if view is not None:
        states = pcg64_states(words)
        for i in range(states.shape[0]):
            view[:] = states[i]
            out[i] = gen.standard_normal(dim)
        return out
    for i, w in enumerate(words.tolist()):
        state, inc = pcg64_state((w[0], w[1], w[2], w[3]))
        bit_gen.state = {"bit_generator": "PCG64", "state": {"state": state, "inc": inc}, "has_uint32": 0, "uinteger": 0}
        gen.standard_normal(out=out[i])
    return out
