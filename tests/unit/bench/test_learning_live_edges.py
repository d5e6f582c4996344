"""bench/learning.py's live_edges: kept edges on an observation-to-action path, the rest counted out."""

from __future__ import annotations

import numpy as np
from esenas.network import Architecture
from esenas.spec import PolicySpec

from bench.learning import live_edges


def test_edges_off_every_path_are_not_live() -> None:
    # 3 observations, 3 hidden units, 2 actions; blocks 0->1 (0-8), 0->2 (9-14), 1->2 (15-20), rows = targets
    arch = Architecture(PolicySpec(template="mlp", hidden_layers=(3,), topology="edges", edges=5, search_space="residual_edges"), 3, 2)
    assert arch.offsets == (0, 9, 15, 21)
    path = [0 * 3 + 0, 15 + 1 * 3 + 0]  # observation 0 -> hidden 0 -> action 1
    fed_not_read = [1 * 3 + 1]  # observation 1 -> hidden 1, which no action reads
    read_not_fed = [15 + 0 * 3 + 2]  # hidden 2, fed by nothing (a constant), -> action 0
    direct = [9 + 0 * 3 + 2]  # observation 2 -> action 0
    kept = np.array(sorted(path + fed_not_read + read_not_fed + direct), np.int64)
    assert live_edges(arch, kept) == 3


def test_every_edge_of_a_dense_two_layer_network_is_live_and_a_broken_chain_is_not() -> None:
    arch = Architecture(PolicySpec(template="mlp", hidden_layers=(2, 2), topology="edges", edges=3), 2, 1)
    assert live_edges(arch, np.arange(arch.candidate_weights, dtype=np.int64)) == arch.candidate_weights
    # blocks 0->1 (0-3), 1->2 (4-7), 2->3 (8-9): obs 0 -> h1 unit 0 -> h2 unit 1, but h2 unit 1 reaches no action
    assert live_edges(arch, np.array([0, 4 + 1 * 2 + 0, 8 + 0], np.int64)) == 0
    assert live_edges(arch, np.array([0, 4 + 1 * 2 + 0, 8 + 1], np.int64)) == 3
