"""Policies: parameter counts per topology, forward pass, save/load round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.spec import PolicySpec

OBS, ACT = 17, 6  # HalfCheetah


def arch(**kw: object) -> Architecture:
    return Architecture(PolicySpec(**kw), OBS, ACT)  # type: ignore[arg-type]


def test_partition_policy_has_exactly_p_shared_weights() -> None:
    a = arch(template="mlp", hidden_layers=(41,), topology="partition", partitions=17)
    assert a.num_weights == 17
    assert a.num_params == 17 + 41 + 6
    assert a.dense_params == 17 * 41 + 41 * 6 + 41 + 6 == 990
    rng = np.random.default_rng(0)
    topo = a.search_space().sample(rng)
    params = rng.normal(size=a.num_params)
    mats, _ = a.weights(params, topo)
    values = np.unique(np.concatenate([m.ravel() for m in mats]))
    assert values.size <= 17 and set(values) <= set(params[:17])
    # the poster's HalfCheetah H41/17 figure: ~94% compression
    assert a.compression(topo) == pytest.approx(1 - 64 / 990)


def test_toeplitz_and_circulant_counts_and_structure() -> None:
    t = arch(template="mlp", hidden_layers=(41,), topology="toeplitz")
    c = arch(template="mlp", hidden_layers=(41,), topology="circulant")
    assert t.num_weights == (17 + 41 - 1) + (41 + 6 - 1)
    assert c.num_weights == 41 + 41
    params = np.random.default_rng(1).normal(size=t.num_params)
    m = t.weights(params, t.default_topology())[0][0]
    assert np.allclose(np.diag(m), m[0, 0]) and np.allclose(np.diag(m, 1), m[0, 1])  # constant diagonals
    cm = c.weights(np.arange(c.num_params, dtype=np.float64), c.default_topology())[0][1]  # 6 x 41
    assert cm[1, 1] == cm[0, 0] and cm[1, 0] == cm[0, 40]  # wraps around


@pytest.mark.parametrize("space", ["aggregate_edges", "independent_edges", "residual_edges"])
def test_edge_topologies_keep_k_edges(space: str) -> None:
    a = arch(template="mlp", hidden_layers=(8,), topology="edges", edges=10, search_space=space)
    topo = a.search_space().sample(np.random.default_rng(2))
    kept = a.weight_params(topo)
    assert kept == (20 if space == "independent_edges" else 10)
    params = np.random.default_rng(3).normal(size=a.num_params)
    mats, _ = a.weights(params, topo)
    assert sum(int(np.count_nonzero(m)) for m in mats) == kept
    if space == "residual_edges":
        assert [(b.src, b.dst) for b in a.blocks] == [(0, 1), (0, 2), (1, 2)]


@pytest.mark.parametrize(
    "kw",
    [
        {"template": "linear"},
        {"template": "mlp", "hidden_layers": (41,), "topology": "partition", "partitions": 17},
        {"template": "mlp", "hidden_layers": (8, 8), "topology": "edges", "edges": 30, "search_space": "residual_edges"},
        {"template": "mlp", "hidden_layers": (41,), "topology": "circulant"},
        {"template": "linear", "topology": "edges", "edges": 20},
        {"template": "linear", "clip_actions": True},
        {"template": "mlp", "hidden_layers": (4,), "topology": "partition", "partitions": 3, "clip_actions": False},
    ],
)
def test_save_load_round_trip_replays_identically(kw: dict[str, object], tmp_path: Path) -> None:
    a = arch(**kw)
    rng = np.random.default_rng(4)
    topo = a.search_space().sample(rng) if a.search_space().num_decisions else a.default_topology()
    params = rng.normal(size=a.num_params)
    p = Policy(a, topo, params, rng.normal(size=OBS), rng.uniform(0.5, 2, OBS))
    p.save(tmp_path / "p.json")
    q = Policy.load(tmp_path / "p.json")
    obs = rng.normal(size=(32, OBS))
    np.testing.assert_allclose(q.act(obs), p.act(obs))
    np.testing.assert_allclose(q.act(obs[0]), p.act(obs)[0])
    assert q.trainable_params == p.trainable_params < a.dense_params or kw["template"] == "linear"
    assert q.arch.spec.clip_actions is p.arch.spec.clip_actions is kw.get("clip_actions", kw["template"] == "mlp")


@pytest.mark.parametrize("template", ["linear", "mlp"])
def test_a_policy_saved_before_clip_actions_clips_by_template(template: str) -> None:
    p = Policy(arch(template=template), arch(template=template).default_topology(), np.zeros(arch(template=template).num_params))
    data = p.to_json()
    del data["policy"]["clipActions"]  # as files written before 2026-12-05
    assert Policy.from_json(data).arch.spec.clip_actions is (template == "mlp")


def test_linear_forward_is_linear_as_in_ars() -> None:
    a = arch(template="linear")
    params = np.random.default_rng(7).normal(size=a.num_params)
    x = np.random.default_rng(8).normal(size=OBS) * 10
    expected = params[: OBS * ACT].reshape(ACT, OBS) @ x + params[OBS * ACT :]
    np.testing.assert_allclose(Policy(a, a.default_topology(), params).act(x), expected)


def test_mlp_forward_matches_a_hand_computation() -> None:
    a = arch(template="mlp", hidden_layers=(3,))
    params = np.random.default_rng(5).normal(size=a.num_params)
    w1 = params[: 3 * OBS].reshape(3, OBS)
    w2 = params[3 * OBS : 3 * OBS + 3 * ACT].reshape(ACT, 3)
    b1, b2 = params[-9:-6], params[-6:]
    x = np.random.default_rng(6).normal(size=OBS)
    expected = w2 @ np.tanh(w1 @ x + b1) + b2
    np.testing.assert_allclose(Policy(a, a.default_topology(), params).act(x), expected)


@pytest.mark.parametrize(
    ("kw", "default_std"),
    [
        ({"template": "linear"}, 0.0),
        ({"template": "mlp", "hidden_layers": (41, 41), "topology": "partition", "partitions": 17}, 1 / np.sqrt(17)),
        ({"template": "mlp", "hidden_layers": (41,), "topology": "dense"}, None),  # 1/sqrt(each layer's inputs)
    ],
)
def test_init_std_sets_the_initial_weights_spread_and_leaves_biases_at_zero(kw: dict[str, object], default_std: float | None) -> None:
    def weights(std: float | None) -> tuple[np.ndarray, np.ndarray]:
        arch = Architecture(PolicySpec(**kw, init_std=std), 17, 6)  # type: ignore[arg-type]
        p = arch.init_params(np.random.default_rng(0))
        return p[: arch.num_weights], p[arch.num_weights :]

    w, b = weights(None)
    assert not b.any()
    if default_std is not None:
        assert w.std() == pytest.approx(default_std, rel=0.35)
    else:  # the output layer (41 inputs) starts narrower than the hidden one (17 inputs)
        assert w[: 17 * 41].std() == pytest.approx(1 / np.sqrt(17), rel=0.1)
        assert w[17 * 41 :].std() == pytest.approx(1 / np.sqrt(41), rel=0.2)
    w, b = weights(0.5)
    assert w.std() == pytest.approx(0.5, rel=0.35) and not b.any()
    w, _ = weights(0.0)
    assert not w.any()
