"""Topologies: stable ids, compact wire blob, mutation."""

from __future__ import annotations

import numpy as np
import pytest
from esenas.topology import (
    SearchSpace,
    Topology,
    decision_rows,
    decode_topologies,
    encode_topologies,
)


def test_id_is_stable_and_depends_on_decisions() -> None:
    a = Topology("partition", [0, 1, 2])
    assert a.id == Topology("partition", np.array([0, 1, 2])).id
    assert len(a.id) == 16 and int(a.id, 16) >= 0
    assert a.id == Topology.from_json(a.to_json()).id
    assert a.id != Topology("partition", [0, 1, 3]).id
    assert a.id != Topology("edges", [0, 1, 2]).id


def test_blob_round_trip_uses_small_integers() -> None:
    topos = [Topology("partition", np.arange(943) % 17), Topology("edges", [5, 70000, 3]), Topology("dense")]
    blob = encode_topologies(topos)
    assert decode_topologies(blob) == topos
    assert len(blob) < 943 + 3 * 4 + 40  # one byte per colour, not eight


def _slow_blob(topos: list[Topology]) -> bytes:
    """The record-by-record encoding of the blob: the layout the block fast path must match."""
    blob = encode_topologies(topos[:1])
    for t in topos[1:]:
        blob += encode_topologies([t])[4:]
    return len(topos).to_bytes(4, "little") + blob[4:]


def test_blob_of_one_kind_and_length_decodes_as_rows_of_one_block() -> None:
    rng = np.random.default_rng(0)
    block = rng.integers(0, 17, (50, 943), dtype=np.uint8)
    block.setflags(write=False)
    sampled = [Topology.sampled("partition", row) for row in block]
    blob = encode_topologies(sampled)
    assert blob == _slow_blob(sampled)
    back = decode_topologies(blob)
    assert back == sampled and [t.id for t in back] == [t.id for t in sampled]
    assert all(not t.decisions.flags.writeable and t.decisions.dtype == np.uint8 for t in back)
    np.testing.assert_array_equal(decision_rows(back), block)
    # a wider value in one topology, a second kind or length: record by record, same round trip
    for mixed in (
        [*sampled[:3], Topology("partition", [300, 1, 2] + [0] * 940)],
        [*sampled[:3], Topology("edges", block[3])],
        [*sampled[:3], Topology("partition", block[3, :10])],
    ):
        assert encode_topologies(mixed) == _slow_blob(mixed)
        assert decode_topologies(encode_topologies(mixed)) == mixed
    with pytest.raises(ValueError, match="trailing"):
        decode_topologies(blob + b"x")


def test_decision_rows_refuses_mixed_lengths() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        decision_rows([Topology("partition", [0, 1]), Topology("partition", [0, 1, 2])])
    assert decision_rows([]).shape == (0, 0)


def test_blob_with_trailing_bytes_is_rejected() -> None:
    with pytest.raises(ValueError, match="trailing"):
        decode_topologies(encode_topologies([Topology("dense")]) + b"x")


def test_mutation_changes_at_least_one_decision_and_stays_in_range() -> None:
    space = SearchSpace("partition", np.full(10, 3, np.int64))
    rng = np.random.default_rng(0)
    t = space.sample(rng)
    for _ in range(50):
        m = space.mutate(t, 0.0, rng)
        assert m != t
        space.validate(m)
