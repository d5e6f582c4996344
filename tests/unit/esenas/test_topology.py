"""Topologies: stable ids, compact wire blob, mutation."""

from __future__ import annotations

import numpy as np
import pytest
from esenas.topology import SearchSpace, Topology, decode_topologies, encode_topologies


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
